// Charts (Chart.js, vendored): the Okabe-Ito palette, and one function per chart the pages
// draw. Each chart keeps a visually hidden table of its numbers for screen readers.
"use strict";
(function (ES) {
  ES.palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"];
  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.color = "#1d2733";
  Chart.defaults.animation = false;  // the numbers change live; redraw without motion

  const charts = new Map();
  function draw(canvas, config) {
    if (charts.has(canvas.id)) charts.get(canvas.id).destroy();
    const chart = new Chart(canvas, config);
    charts.set(canvas.id, chart);
    return chart;
  }
  ES.destroyCharts = () => { for (const c of charts.values()) c.destroy(); charts.clear(); };

  ES.chartBox = (id, label) => ES.el("div", { class: "chart" },
    ES.el("canvas", { id, role: "img", "aria-label": label }));

  // One bar per scale point: `counts[i]` items scored `scale[i]`.
  ES.histogram = (canvas, scale, counts, axisLabel) => draw(canvas, {
    type: "bar",
    data: { labels: scale.map(String),
            datasets: [{ label: "items", data: counts, backgroundColor: ES.palette[0] }] },
    options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
      scales: { x: { title: { display: true, text: axisLabel } },
                y: { beginAtZero: true, ticks: { precision: 0 },
                     title: { display: true, text: "items" } } } },
  });

  // A Gaussian kernel density of `values` over [lo, hi] (Scott's bandwidth).
  ES.density = (canvas, values, lo, hi, axisLabel) => {
    const n = values.length;
    const mean = values.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(n - 1, 1));
    const bw = Math.max(1.06 * (sd || 0.25) * n ** -0.2, 0.05);
    const xs = Array.from({ length: 81 }, (_, i) => lo + (i * (hi - lo)) / 80);
    const ys = xs.map((x) => values.reduce((acc, v) =>
      acc + Math.exp(-0.5 * ((x - v) / bw) ** 2), 0) / (n * bw * Math.sqrt(2 * Math.PI)));
    return draw(canvas, {
      type: "line",
      data: { labels: xs.map((x) => x.toFixed(2)),
              datasets: [{ label: "density", data: ys, borderColor: ES.palette[1],
                           backgroundColor: "rgba(230,159,0,.25)", fill: true, pointRadius: 0 }] },
      options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
        scales: { x: { title: { display: true, text: axisLabel }, ticks: { maxTicksLimit: 11 } },
                  y: { beginAtZero: true, title: { display: true, text: "density (1/point)" } } } },
    });
  };

  // Bradley-Terry ratings as points, their intervals as floating bars from ci_low to ci_high.
  ES.leaderboard = (canvas, rows) => draw(canvas, {
    type: "bar",
    data: { labels: rows.map((r) => r.system),
            datasets: [
              { type: "line", label: "rating", indexAxis: "y", showLine: false,
                backgroundColor: ES.palette[5], borderColor: ES.palette[5],
                pointStyle: "rectRot", pointRadius: 8, data: rows.map((r) => r.rating) },
              { label: "95 % interval", backgroundColor: "rgba(0,114,178,.35)",
                borderColor: ES.palette[0], borderWidth: 1, minBarLength: 4,
                data: rows.map((r) => [r.ci_low ?? r.rating, r.ci_high ?? r.rating]) }] },
    options: { indexAxis: "y", maintainAspectRatio: false,
      scales: { x: { title: { display: true, text: "Bradley–Terry rating (log-odds)" } } } },
  });

  // Items per second over time: `points` are {t: ms since epoch, v: items/s}.
  ES.throughput = (canvas, points) => draw(canvas, {
    type: "line",
    data: { labels: points.map((p) => new Date(p.t).toLocaleTimeString()),
            datasets: [{ label: "items/s", data: points.map((p) => p.v),
                         borderColor: ES.palette[0], pointRadius: 0, tension: 0.2 }] },
    options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, title: { display: true, text: "items/s" } } } },
  });

  // A heat-map cell colour: white to Okabe-Ito blue by share of the row's largest count.
  ES.heat = (share) => {
    const mix = (a, b) => Math.round(a + (b - a) * share);
    return `rgb(${mix(255, 0)}, ${mix(255, 114)}, ${mix(255, 178)})`;
  };
})(window.ES);
