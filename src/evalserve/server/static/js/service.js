// The Service page: the model(s) served, the engine, queue depth, running sequences and the
// items graded per second, sampled from GET /metrics (Prometheus text) while the page is open.
"use strict";
(function (ES) {
  const { el } = ES;
  const samples = [];  // {t, graded}: kept across visits to the page, 10 minutes at most
  const WINDOW_MS = 10 * 60 * 1000;

  // Sum of every sample of a metric family in Prometheus text (labels ignored).
  ES.metric = (text, name) => {
    let total = null;
    for (const line of text.split("\n")) {
      if (line.startsWith("#")) continue;
      const m = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/);
      if (m && m[1] === name) total = (total || 0) + Number(m[3]);
    }
    return total;
  };

  ES.pages = ES.pages || {};
  ES.pages.service = async (main, signal) => {
    const stat = (label, id) => el("div", {}, el("dt", {}, label), el("dd", { id }, "…"));
    const models = el("ul", { id: "models" });
    main.append(
      el("section", { "aria-labelledby": "svc-title" }, el("h2", { id: "svc-title" }, "Service"),
        el("dl", { class: "stats" }, stat("status", "svc-status"), stat("engine", "svc-engine"),
          stat("queue depth", "svc-queue"), stat("running sequences", "svc-running"),
          stat("active jobs", "svc-jobs"), stat("items graded", "svc-graded"),
          stat("throughput", "svc-rate"), stat("process memory", "svc-memory")),
        el("h3", {}, "Models served (/v1/models)"), models),
      el("section", { "aria-labelledby": "tp-title" },
        el("h2", { id: "tp-title" }, "Throughput, last 10 minutes (sampled while this page is open)"),
        ES.chartBox("throughput", "items graded per second over time")));
    const set = (id, value) => { document.getElementById(id).textContent = value; };
    const [info, listed] = await Promise.all([ES.api("/ui/service.json"), ES.api("/v1/models")]);
    set("svc-engine", `${info.engine} · ${info.model}`);
    ES.clear(models).append(...listed.data.map((m) => el("li", {}, m.id)));
    let timer = null;
    const poll = async () => {
      if (signal.aborted) return;
      try {
        const [health, text] = await Promise.all([ES.api("/health"), ES.text("/metrics")]);
        const now = Date.now();
        const graded = ES.metric(text, "evalserve_items_graded_total") || 0;
        samples.push({ t: now, graded });
        while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
        const points = samples.slice(1).map((s, i) => ({ t: s.t,
          v: Math.max(0, (s.graded - samples[i].graded) / ((s.t - samples[i].t) / 1000)) }));
        set("svc-status", health.status);
        set("svc-queue", `${ES.num(ES.metric(text, "evalserve_engine_queue_depth"), 0)} sequences`);
        const running = ES.metric(text, "evalserve_engine_running");
        set("svc-running", running === null ? "not reported" : `${ES.num(running, 0)} sequences`);
        set("svc-jobs", `${health.active_jobs} jobs`);
        set("svc-graded", `${ES.num(graded, 0)} items`);
        set("svc-rate", points.length ? `${ES.num(points[points.length - 1].v, 2)} items/s` : "measuring…");
        const mem = ES.metric(text, "evalserve_process_memory_bytes");
        set("svc-memory", mem === null ? "–" : `${ES.num(mem / 2 ** 20, 0)} MiB`);
        ES.throughput(document.getElementById("throughput"), points);
      } catch (e) { set("svc-status", e.message); }
      timer = setTimeout(poll, 3000);
    };
    signal.addEventListener("abort", () => clearTimeout(timer));
    await poll();
  };
})(window.ES);
