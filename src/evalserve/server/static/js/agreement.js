// The Agreement page: the judge against the human grades (GET /jobs/{id}/agreement).
"use strict";
(function (ES) {
  const { el } = ES;

  ES.confusion = (section, id) => {
    const { labels, counts } = section.confusion;
    const max = Math.max(1, ...counts.flat());
    return el("table", { class: "heat", id, "aria-label": "confusion matrix: rows human, columns judge" },
      el("thead", {}, el("tr", {}, el("th", {}, "human ↓ · judge →"),
        labels.map((l) => el("th", { scope: "col" }, String(l))))),
      el("tbody", {}, counts.map((row, i) => el("tr", {}, el("th", { scope: "row" }, String(labels[i])),
        row.map((n) => el("td", { style: `background:${ES.heat(n / max)};color:${n / max > 0.55 ? "#fff" : "#1d2733"}` },
          String(n)))))));
  };

  ES.agreementNumbers = (s, id) => {
    const row = (name, value, ci, key) => el("tr", {}, el("th", { scope: "row" }, name),
      el("td", { class: "num", "data-metric": key }, value), el("td", { class: "muted" }, ci || ""));
    return el("table", { id },
      el("thead", {}, el("tr", {}, el("th", {}, "statistic"), el("th", { class: "num" }, "value"),
        el("th", {}, `${ES.num(100 * s.confidence, 0)} % interval`))),
      el("tbody", {},
        row("items compared (n)", String(s.n), `${s.missing_human} without a human grade, ` +
          `${s.missing_judge} without a judge score`, "n"),
        row("quadratic weighted κ (QWK)", ES.num(s.qwk, 3), ES.interval(s.qwk_ci), "qwk"),
        row("Cohen's κ", ES.num(s.kappa, 3), "", "kappa"),
        row("linear weighted κ", ES.num(s.kappa_linear, 3), "", "kappa_linear"),
        row("Krippendorff's α (ordinal)", ES.num(s.krippendorff_alpha, 3), "", "alpha"),
        row("Spearman ρ", ES.num(s.spearman, 3), ES.interval(s.spearman_ci), "spearman"),
        row("exact agreement", ES.pct(s.exact), "", "exact"),
        row("within one point", ES.pct(s.adjacent), "", "adjacent"),
        row("mean absolute error", ES.num(s.mae, 2) + " points", "", "mae"),
        row("bias (judge − human)", ES.num(s.bias, 2) + " points", "", "bias")));
  };

  function disagreements(s) {
    return el("table", { id: "disagreements" },
      el("thead", {}, el("tr", {}, ["item", "human", "judge", "judge − human", "judge's feedback"]
        .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, s.disagreements.map((d) => el("tr", {},
        el("td", {}, String(d.id)), el("td", { class: "num" }, String(d.human)),
        el("td", { class: "num" }, String(d.judge)), el("td", { class: "num" }, ES.num(d.difference, 1)),
        el("td", { class: "feedback" }, d.feedback === null || d.feedback === undefined ? "–" : String(d.feedback))))));
  }

  function block(title, s, prefix) {
    if (s.error) return el("section", {}, el("h2", {}, title), el("p", { class: "error" }, s.error));
    return el("section", { "aria-label": title }, el("h2", {}, title),
      el("div", { class: "grid2" },
        el("div", {}, el("h3", {}, "Confusion matrix"), el("div", { class: "scroll" }, ES.confusion(s, prefix + "-confusion"))),
        el("div", {}, el("h3", {}, "Statistics"), ES.agreementNumbers(s, prefix + "-numbers"))),
      el("h3", {}, "Largest disagreements"), el("div", { class: "scroll" }, disagreements(s)));
  }

  ES.pages = ES.pages || {};
  ES.pages.agreement = async (main, signal, jobId) => {
    const jid = encodeURIComponent(jobId);
    const a = await ES.api(`/jobs/${jid}/agreement`);
    main.append(el("section", {}, el("p", {}, el("a", { href: `#/job/${jid}` }, `← job ${jobId.slice(0, 8)}`)),
      el("h2", { id: "agreement-title" }, `Agreement with the human grades (job ${a.status})`)),
      block("Judge score", a.score, "score"));
    if (a.score_expected) main.append(block("score_expected (probability-weighted)", a.score_expected, "expected"));
  };
})(window.ES);
