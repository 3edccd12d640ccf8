// The Job page (progress over SSE while it runs, score distribution, problem items, the
// items table with filter and sort, downloads) and the Item page (one record in full).
"use strict";
(function (ES) {
  const { el } = ES;

  // The rubric's score/feedback/id fields and scale (GET /rubrics/{name}); a pairwise
  // rubric's scale is its verdict scores 0, 0.5, 1.
  ES.jobSpec = async (job, records) => {
    let rubric = {};
    try { rubric = await ES.rubric(job.rubric); } catch (e) { /* an inline rubric */ }
    const scoreField = rubric.score_field || "score";
    let scale = rubric.scale || (rubric.mode === "pairwise" ? [0, 0.5, 1] : null);
    if (!scale) {
      scale = [...new Set(records.map((r) => r[scoreField]).filter((v) => typeof v === "number"))]
        .sort((a, b) => a - b);
    }
    return { scoreField, scale, feedbackField: rubric.feedback_field || "feedback",
             idField: rubric.id_field || "id" };
  };

  // counts[i]: scored records whose score is nearest to scale[i].
  ES.scoreCounts = (records, spec) => {
    const counts = spec.scale.map(() => 0);
    for (const r of records) {
      const v = r[spec.scoreField];
      if (r.status !== "scored" || typeof v !== "number") continue;
      let best = 0;
      spec.scale.forEach((p, i) => { if (Math.abs(p - v) < Math.abs(spec.scale[best] - v)) best = i; });
      counts[best] += 1;
    }
    return counts;
  };

  function stats(job) {
    const c = job.counts, t = job.timings;
    const rate = t.elapsed_seconds > 0 ? c.completed / t.elapsed_seconds : null;
    const item = (label, value, id) => el("div", {}, el("dt", {}, label), el("dd", { id }, value));
    return el("dl", { class: "stats", id: "job-stats" },
      item("status", job.status, "stat-status"),
      item("progress", `${ES.num(c.percentage, 1)} %`, "stat-progress"),
      item("items", `${c.completed} / ${c.total}`, "stat-items"),
      item("scored", String(c.scored), "stat-scored"),
      item("unscored", String(c.unscored), "stat-unscored"),
      item("errors", String(c.errors), "stat-errors"),
      item("mean score", ES.num(job.mean_score, 2), "stat-mean"),
      item("elapsed", ES.seconds(t.elapsed_seconds), "stat-elapsed"),
      item("speed", rate ? ES.num(rate, 2) + " items/s" : "–", "stat-speed"));
  }

  function progressBar(pct) {
    return el("div", { class: "bar", role: "progressbar", id: "job-progress", "aria-valuemin": 0,
      "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": "progress" },
      el("div", { style: `width:${pct}%` }));
  }

  // Follow the stream of a running job: update the bar; re-render the page when it ends.
  function follow(job, section, signal, rerender) {
    const text = el("p", { class: "muted", id: "live", "aria-live": "polite" }, "Following live…");
    section.append(text);
    const mark = document.body.dataset;  // the stream's state, where a test can read it
    mark.following = job.job_id;
    delete mark.streamed; delete mark.streamEnd;
    ES.stream(job.job_id, (type, data) => {
      if (data.progress) {
        const p = data.progress;
        const bar = document.getElementById("job-progress");
        bar.setAttribute("aria-valuenow", p.percentage);
        bar.firstChild.style.width = p.percentage + "%";
        mark.streamed = String(p.completed);
        text.textContent = `${p.completed}/${p.total} items · ${ES.num(p.percentage, 1)} % · ` +
          `ETA ${ES.seconds(p.estimated_remaining_seconds)}`;
      }
      if (["complete", "cancelled", "error"].includes(type)) {
        mark.streamEnd = type;
        text.textContent = `Job ${data.status}.`;
      }
    }, signal).then(() => { if (!signal.aborted) rerender(); },
      (e) => { if (!signal.aborted) text.textContent = "Stream stopped: " + e.message; });
  }

  function itemsTable(job, records, spec) {
    const jid = encodeURIComponent(job.job_id);
    const rows = records.map((r, i) => ({ i, id: String(r[spec.idField] ?? i), status: r.status,
      score: r[spec.scoreField], expected: r.score_expected,
      text: r[spec.feedbackField] ?? r.reason ?? "" }));
    const cols = [["i", "#"], ["id", "id"], ["status", "status"], ["score", "score"],
      ["expected", "expected"], ["text", "feedback / reason"]];
    let sortKey = "i", dir = 1;
    const filter = el("input", { id: "items-filter", type: "search", placeholder: "filter: id, text" });
    const status = el("select", { id: "items-status" },
      ["all", "scored", "unscored", "error"].map((s) => el("option", { value: s }, s)));
    const body = el("tbody", { id: "items" });
    const render = () => {
      const q = filter.value.toLowerCase();
      const shown = rows.filter((r) => (status.value === "all" || r.status === status.value) &&
        (!q || r.id.toLowerCase().includes(q) || String(r.text).toLowerCase().includes(q)));
      shown.sort((a, b) => {
        const x = a[sortKey], y = b[sortKey];
        if (x === y) return a.i - b.i;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * dir;
      });
      ES.clear(body).append(...shown.map((r) => el("tr", {},
        el("td", { class: "num" }, String(r.i + 1)),
        el("td", {}, el("a", { href: `#/job/${jid}/item/${r.i}` }, r.id)),
        el("td", { class: "status status-" + r.status }, r.status),
        el("td", { class: "num" }, ES.num(r.score, 2)),
        el("td", { class: "num" }, ES.num(r.expected, 2)),
        el("td", { class: "feedback" }, String(r.text)))));
    };
    const head = el("tr", {}, cols.map(([key, label]) => el("th", { scope: "col" },
      el("button", { type: "button", "data-sort": key, onclick: () => {
        dir = sortKey === key ? -dir : 1; sortKey = key; render();
      } }, label))));
    filter.addEventListener("input", render);
    status.addEventListener("change", render);
    render();
    return el("section", { "aria-labelledby": "items-title" },
      el("h2", { id: "items-title" }, `Items (${records.length})`),
      el("p", {}, el("label", {}, "Filter", filter), " ", el("label", {}, "Status", status)),
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), body)));
  }

  function problems(records, spec) {
    const bad = records.filter((r) => r.status !== "scored");
    if (!bad.length) return null;
    return el("section", { "aria-labelledby": "problems-title" },
      el("h2", { id: "problems-title" }, `Unscored and error items (${bad.length})`),
      el("ul", { id: "problems" }, bad.map((r) => el("li", {},
        el("strong", {}, `${r[spec.idField] ?? ""} (${r.status}): `),
        String(r.reason ?? "no reason given")))));
  }

  ES.pages = ES.pages || {};
  ES.pages.job = async (main, signal, jobId, itemIndex) => {
    const jid = encodeURIComponent(jobId);
    const job = await ES.api("/jobs/" + jid);
    const records = (await ES.api(`/jobs/${jid}/results`)).results;
    const spec = await ES.jobSpec(job, records);
    if (itemIndex !== undefined) return itemPage(main, job, records[Number(itemIndex)], spec);
    const rerender = () => ES.route();
    const report = job.report || {};
    const head = el("section", { "aria-labelledby": "job-title" },
      el("h2", { id: "job-title" }, `Job ${job.job_id}`),
      el("p", { class: "muted" }, `rubric ${job.rubric} · created ${job.timings.created_at}`),
      progressBar(job.counts.percentage), stats(job),
      el("p", { class: "links" },
        report.agreement ? el("a", { href: `#/agreement/${jid}`, id: "link-agreement" }, "Agreement") : null,
        report.pairwise || report.jury ? el("a", { href: `#/pairwise/${jid}`, id: "link-pairwise" },
          report.pairwise ? "Pairwise leaderboard" : "Jury") : null,
        el("button", { type: "button", id: "dl-jsonl",
          onclick: () => ES.download(`/jobs/${jid}/results?format=jsonl`, jobId + ".jsonl") }, "Download JSONL"),
        " ",
        el("button", { type: "button", id: "dl-csv",
          onclick: () => ES.download(`/jobs/${jid}/results?format=csv`, jobId + ".csv") }, "Download CSV")));
    if (job.status === "queued" || job.status === "running") follow(job, head, signal, rerender);
    const counts = ES.scoreCounts(records, spec);
    const histTable = el("table", { id: "histogram-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "row" }, "score"),
        spec.scale.map((s) => el("th", { class: "num" }, String(s))))),
      el("tbody", {}, el("tr", {}, el("th", { scope: "row" }, "items"),
        counts.map((n) => el("td", { class: "num" }, String(n))))));
    const dist = el("section", { "aria-labelledby": "dist-title" },
      el("h2", { id: "dist-title" }, "Score distribution"),
      ES.chartBox("histogram", "histogram of scores"), el("div", { class: "scroll" }, histTable));
    const expected = records.filter((r) => typeof r.score_expected === "number").map((r) => r.score_expected);
    const charts = el("div", { class: "grid2" }, dist);
    if (expected.length) {
      charts.append(el("section", { "aria-labelledby": "dens-title" },
        el("h2", { id: "dens-title" }, "score_expected density"),
        ES.chartBox("density", "density of expected scores"),
        el("p", { class: "muted" }, `${expected.length} items with a probability-weighted score`)));
    }
    main.append(head, charts, problems(records, spec) || "", itemsTable(job, records, spec));
    ES.histogram(document.getElementById("histogram"), spec.scale, counts, spec.scoreField);
    if (expected.length) {
      ES.density(document.getElementById("density"), expected, spec.scale[0],
        spec.scale[spec.scale.length - 1], "score_expected");
    }
  };

  function itemPage(main, job, record, spec) {
    const jid = encodeURIComponent(job.job_id);
    if (!record) throw new Error("no such item in this job");
    const show = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v, null, 2) : String(v));
    main.append(el("section", { "aria-labelledby": "item-title" },
      el("p", {}, el("a", { href: `#/job/${jid}` }, `← job ${job.job_id.slice(0, 8)}`)),
      el("h2", { id: "item-title" }, `Item ${record[spec.idField] ?? ""}`),
      el("dl", { class: "kv", id: "item-detail" }, Object.entries(record).map(([k, v]) =>
        [el("dt", {}, k), el("dd", {}, show(v))]))));
  }
})(window.ES);
