// The Pairwise / jury page: win rates, the Bradley-Terry leaderboard, position consistency
// (report.pairwise), and each judge's counts and agreement (report.jury).
"use strict";
(function (ES) {
  const { el } = ES;

  function pairwise(p) {
    const systems = Object.keys(p.win_rate);
    const stat = (label, value, id) => el("div", {}, el("dt", {}, label), el("dd", { id }, value));
    const section = el("section", { "aria-labelledby": "pw-title" },
      el("h2", { id: "pw-title" }, "Pairwise comparison"),
      el("dl", { class: "stats" },
        stat("pairs judged", String(p.pairs), "pw-pairs"),
        stat("unjudged", String(p.unjudged), "pw-unjudged"),
        stat("position consistency", ES.pct(p.consistency_rate), "pw-consistency"),
        stat("first position wins", ES.pct(p.first_position_win_rate), "pw-first")),
      el("h3", {}, "Win rates"),
      el("div", { class: "scroll" }, el("table", { id: "win-rates" },
        el("thead", {}, el("tr", {}, ["system", "wins", "ties", "losses", "win rate"].map((h) =>
          el("th", { scope: "col", class: h === "system" ? null : "num" }, h)))),
        el("tbody", {}, systems.map((s) => el("tr", {}, el("td", {}, s),
          el("td", { class: "num" }, String(p.wins[s])), el("td", { class: "num" }, String(p.ties[s])),
          el("td", { class: "num" }, String(p.losses[s])), el("td", { class: "num" }, ES.pct(p.win_rate[s]))))))));
    const board = p.leaderboard || [];
    section.append(el("h3", {}, "Bradley–Terry leaderboard"));
    if (!board.length) {
      section.append(el("p", { class: "muted" }, "A leaderboard needs at least two systems."));
      return [section, null];
    }
    section.append(el("div", { class: "grid2" },
      el("div", { class: "scroll" }, el("table", { id: "leaderboard" },
        el("thead", {}, el("tr", {}, ["rank", "system", "rating", "95 % interval"].map((h) =>
          el("th", { scope: "col" }, h)))),
        el("tbody", {}, board.map((r) => el("tr", {}, el("td", { class: "num" }, String(r.rank)),
          el("td", {}, r.system), el("td", { class: "num" }, ES.num(r.rating, 2)),
          el("td", {}, ES.interval([r.ci_low, r.ci_high]))))))),
      ES.chartBox("leaderboard-chart", "Bradley-Terry ratings with intervals")));
    return [section, board];
  }

  function jury(j) {
    return el("section", { "aria-labelledby": "jury-title" },
      el("h2", { id: "jury-title" }, `Jury of ${j.judges.length} (${j.aggregate}), ${j.items} items`),
      el("p", {}, "Krippendorff's α between the judges: ", el("strong", { id: "jury-alpha" }, ES.num(j.alpha, 3))),
      el("div", { class: "scroll" }, el("table", { id: "jury-judges" },
        el("thead", {}, el("tr", {}, ["judge", "scored", "unscored", "errors", "mean score", "QWK vs human"]
          .map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, j.judges.map((name) => {
          const s = j.per_judge[name];
          return el("tr", {}, el("td", {}, String(name)), el("td", { class: "num" }, String(s.scored)),
            el("td", { class: "num" }, String(s.unscored)), el("td", { class: "num" }, String(s.errors)),
            el("td", { class: "num" }, ES.num(s.mean_score, 2)),
            el("td", { class: "num" }, s.agreement ? ES.num(s.agreement.qwk, 3) + " " + ES.interval(s.agreement.qwk_ci) : "–"));
        })))));
  }

  ES.pages = ES.pages || {};
  ES.pages.pairwise = async (main, signal, jobId) => {
    const jid = encodeURIComponent(jobId);
    const job = await ES.api("/jobs/" + jid);
    const report = job.report || {};
    main.append(el("section", {}, el("p", {}, el("a", { href: `#/job/${jid}` }, `← job ${jobId.slice(0, 8)}`)),
      el("h2", {}, `Job ${jobId}`)));
    if (!report.pairwise && !report.jury) {
      main.append(el("section", {}, el("p", {}, job.report ? "This job is neither pairwise nor a jury."
        : "The report appears when the job has completed.")));
      return;
    }
    let board = null;
    if (report.pairwise && report.pairwise.error) main.append(el("p", { class: "error" }, report.pairwise.error));
    else if (report.pairwise) { const [section, rows] = pairwise(report.pairwise); main.append(section); board = rows; }
    if (report.jury && !report.jury.error) main.append(jury(report.jury));
    if (board) ES.leaderboard(document.getElementById("leaderboard-chart"), board);
  };
})(window.ES);
