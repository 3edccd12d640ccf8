// The dashboard's router (#/jobs, #/job/ID, #/job/ID/item/N, #/agreement/ID, #/pairwise/ID,
// #/service) and the token prompt shown when the server answers 401.
"use strict";
(function (ES) {
  const { el } = ES;
  const main = document.getElementById("main");
  const dialog = document.getElementById("token-dialog");
  let current = null;

  const routes = [
    [/^#\/job\/([^/]+)\/item\/(\d+)$/, "job"], [/^#\/job\/([^/]+)$/, "job"],
    [/^#\/agreement\/([^/]+)$/, "agreement"], [/^#\/pairwise\/([^/]+)$/, "pairwise"],
    [/^#\/service$/, "service"], [/^(#\/jobs)?$/, "jobs"]];

  ES.route = async () => {
    if (current) current.abort();
    current = new AbortController();
    const signal = current.signal;
    ES.destroyCharts();
    ES.clear(main);
    const hash = location.hash || "#/jobs";
    const match = routes.map(([re, page]) => [hash.match(re), page]).find(([m]) => m);
    const [m, page] = match || [[], "jobs"];
    for (const a of document.querySelectorAll("header nav a")) {
      if (a.dataset.page === page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.body.dataset.page = page;
    delete document.body.dataset.ready;
    try {
      await ES.pages[page](main, signal, ...m.slice(1).map(decodeURIComponent));
      if (!signal.aborted) document.body.dataset.ready = page;
    } catch (e) {
      if (signal.aborted) return;
      main.append(el("section", {}, el("p", { class: "error", id: "page-error", role: "alert" }, e.message)));
      document.body.dataset.ready = "error";
    }
  };

  function askToken(message) {
    document.getElementById("token-error").textContent = message || "";
    if (!dialog.open) dialog.showModal();
    document.getElementById("token-input").focus();
  }
  ES.onUnauthorized = () => askToken(ES.token() ? "The server refused this token." : "");

  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    ES.setToken(document.getElementById("token-input").value.trim());
    dialog.close();
    start();
  });
  const signout = document.getElementById("signout");
  signout.addEventListener("click", () => { ES.setToken(""); location.reload(); });

  async function health() {
    try {
      const h = await ES.api("/health");
      document.getElementById("health").textContent =
        `${h.model} · ${h.status} · ${h.active_jobs} active job${h.active_jobs === 1 ? "" : "s"}`;
    } catch (e) { document.getElementById("health").textContent = e.message; }
  }

  async function start() {
    signout.hidden = !ES.token();
    try {
      await ES.request("/jobs?limit=1");  // a 401 opens the token prompt
    } catch (e) {
      if (e.status === 401) return;
    }
    ES.route();
  }

  window.addEventListener("hashchange", ES.route);
  health();
  setInterval(health, 10000);
  start();
})(window.ES);
