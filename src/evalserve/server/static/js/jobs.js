// The Jobs page: submit a CSV/JSONL/JSON file under a rubric, and the caller's jobs, live.
"use strict";
(function (ES) {
  const { el } = ES;

  // Items of a file: CSV (PapaParse, header row), JSON (a list or {"items": [...]}) or JSONL.
  ES.parseItems = (name, text) => {
    if (/\.csv$/i.test(name)) {
      const parsed = Papa.parse(text.trim(), { header: true, skipEmptyLines: true });
      if (parsed.errors.length) {
        const e = parsed.errors[0];
        throw new Error(`CSV row ${(e.row ?? 0) + 2}: ${e.message}`);
      }
      return parsed.data;
    }
    const trimmed = text.trim();
    if (trimmed.startsWith("[") || (trimmed.startsWith("{") && /^\{\s*"items"/.test(trimmed))) {
      const data = JSON.parse(trimmed);
      return Array.isArray(data) ? data : data.items;
    }
    return trimmed.split(/\n/).filter((l) => l.trim()).map((line, i) => {
      try { return JSON.parse(line); } catch (e) { throw new Error(`line ${i + 1}: ${e.message}`); }
    });
  };

  // Rename the file's human-grade column to the rubric's human field, as a number (or null).
  ES.withHuman = (items, column, field) => items.map((item, i) => {
    if (!column) return item;
    if (!(column in item)) throw new Error(`item ${i + 1} has no column "${column}"`);
    const { [column]: raw, ...rest } = item;
    const value = raw === "" || raw === null || raw === undefined ? null : Number(raw);
    if (value !== null && !Number.isFinite(value)) {
      throw new Error(`item ${i + 1}: human grade "${raw}" is not a number`);
    }
    return { ...rest, [field]: value };
  });

  function submitForm(rubrics, onSubmitted) {
    const select = el("select", { id: "rubric", name: "rubric" },
      rubrics.map((r) => el("option", { value: r.name, selected: r.name === "teacher-eval-ca" }, r.name)));
    const fields = el("p", { class: "muted", id: "rubric-fields" });
    const describe = () => {
      const r = rubrics.find((x) => x.name === select.value);
      fields.textContent = r ? `Fields: ${r.fields.join(", ")}` +
        (r.optional_fields.length ? `; optional: ${r.optional_fields.join(", ")}` : "") +
        (r.scale ? `; scale ${r.scale[0]}–${r.scale[r.scale.length - 1]}` : "") : "";
    };
    select.addEventListener("change", describe);
    const file = el("input", { id: "file", type: "file", accept: ".csv,.jsonl,.json", required: true });
    const human = el("input", { id: "human-column", placeholder: "e.g. teacher_grade" });
    const message = el("p", { id: "submit-msg", role: "status" });
    const form = el("form", { class: "submit", id: "submit-form" },
      el("label", {}, "File (CSV, JSONL or JSON)", file),
      el("label", {}, "Rubric", select),
      el("label", {}, "Human-grade column (optional)", human),
      el("div", {}, el("button", { type: "submit", id: "submit" }, "Evaluate")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      message.className = ""; message.textContent = "Submitting…";
      try {
        const f = file.files[0];
        const rubric = await ES.rubric(select.value);
        let items = ES.parseItems(f.name, await f.text());
        items = ES.withHuman(items, human.value.trim(), rubric.human_field || "human_score");
        const job = await ES.post("/evaluate", { rubric: select.value, items });
        message.textContent = `Job ${job.job_id} queued: ${job.total_items} items, about ` +
          ES.seconds(job.estimated_time_seconds) + ".";
        form.reset(); describe();
        onSubmitted(job);
      } catch (e) {
        message.className = "error"; message.textContent = e.message;
      }
    });
    describe();
    return el("section", { "aria-labelledby": "new-title" },
      el("h2", { id: "new-title" }, "New evaluation"), form, fields, message);
  }

  const rate = (job) => (job.timings.elapsed_seconds > 0 && job.counts.completed > 0
    ? job.counts.completed / job.timings.elapsed_seconds : null);
  const active = (job) => job.status === "queued" || job.status === "running";

  function jobRow(job, refresh) {
    const c = job.counts, r = rate(job);
    const eta = active(job) && r ? (c.total - c.completed) / r : null;
    const act = async (fn) => { try { await fn(); } catch (e) { alert(e.message); } refresh(); };
    const id = encodeURIComponent(job.job_id);
    return el("tr", { "data-job": job.job_id },
      el("td", {}, el("a", { href: "#/job/" + id }, job.job_id.slice(0, 8))),
      el("td", { class: "hide-narrow" }, job.rubric),
      el("td", { class: "status status-" + job.status }, job.status),
      el("td", {}, el("div", { class: "bar", role: "progressbar", "aria-valuemin": 0,
        "aria-valuemax": 100, "aria-valuenow": c.percentage, "aria-label": "progress" },
        el("div", { style: `width:${c.percentage}%` })),
        el("span", { class: "muted pct" }, `${ES.num(c.percentage, 1)} % · ${c.completed}/${c.total}`)),
      el("td", { class: "num hide-narrow" }, r === null ? "–" : ES.num(r, 2) + " items/s"),
      el("td", { class: "num hide-narrow" }, eta === null ? "–" : ES.seconds(eta)),
      el("td", { class: "num" }, `${c.scored} / ${c.unscored} / ${c.errors}`),
      el("td", { class: "num hide-narrow" }, ES.num(job.mean_score, 2)),
      el("td", {},
        active(job) ? el("button", { type: "button", class: "cancel",
          onclick: () => act(() => ES.api("/jobs/" + id, { method: "DELETE" })) }, "Cancel") : null,
        !active(job) && (c.errors > 0 || c.unscored > 0) ? el("button", { type: "button",
          class: "retry", onclick: () => act(() => ES.post(
            "/jobs/" + id + "/retry?unscored=" + (c.errors === 0), {})) }, "Retry") : null));
  }

  ES.pages = ES.pages || {};
  ES.pages.jobs = async (main, signal) => {
    const rubrics = (await ES.api("/rubrics")).rubrics;
    const body = el("tbody", { id: "jobs" });
    const note = el("p", { class: "muted", "aria-live": "polite" });
    const head = ["job", "rubric", "status", "progress", "speed", "ETA",
      "scored / unscored / errors", "mean", ""];
    const table = el("table", {}, el("thead", {}, el("tr", {}, head.map((h, i) =>
      el("th", { scope: "col", class: [1, 4, 5, 7].includes(i) ? "hide-narrow" : null }, h)))), body);
    let timer = null;
    const refresh = async () => {
      clearTimeout(timer);
      if (signal.aborted) return;
      try {
        const jobs = (await ES.api("/jobs?limit=100")).jobs;
        ES.clear(body).append(...jobs.map((j) => jobRow(j, refresh)));
        note.textContent = jobs.length ? "" : "No jobs yet: submit a file above.";
        timer = setTimeout(refresh, jobs.some(active) ? 1000 : 5000);
      } catch (e) {
        note.textContent = e.message;
        timer = setTimeout(refresh, 5000);
      }
    };
    signal.addEventListener("abort", () => clearTimeout(timer));
    main.append(submitForm(rubrics, refresh),
      el("section", { "aria-labelledby": "jobs-title" }, el("h2", { id: "jobs-title" }, "Jobs"),
        el("div", { class: "scroll" }, table), note));
    await refresh();
  };
})(window.ES);
