// The dashboard's API client and DOM helpers. Every page talks to the server only through
// `ES.api` (JSON), `ES.stream` (server-sent events read with fetch, because EventSource
// cannot send the Authorization header) and `ES.download`; text from items or judges is only
// ever placed with `textContent` (`ES.el`), never parsed as HTML.
"use strict";
window.ES = window.ES || {};
(function (ES) {
  const TOKEN_KEY = "evalserve-token";

  ES.token = () => sessionStorage.getItem(TOKEN_KEY) || "";
  ES.setToken = (value) => value ? sessionStorage.setItem(TOKEN_KEY, value)
    : sessionStorage.removeItem(TOKEN_KEY);
  const authHeaders = () => (ES.token() ? { Authorization: "Bearer " + ES.token() } : {});

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  ES.ApiError = ApiError;

  async function request(path, options = {}) {
    const resp = await fetch(path, { ...options,
      headers: { ...authHeaders(), ...(options.headers || {}) } });
    if (resp.status === 401) ES.onUnauthorized && ES.onUnauthorized();
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new ApiError(resp.status, body.error ? body.error.message : resp.statusText);
    }
    return resp;
  }
  ES.request = request;
  ES.api = async (path, options = {}) => (await request(path, options)).json();
  ES.text = async (path) => (await request(path)).text();
  ES.post = (path, body) => ES.api(path, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  // Follow `GET /stream/{id}`: calls onEvent(type, data) per event; resolves when it ends.
  ES.stream = async (jobId, onEvent, signal) => {
    const resp = await request("/stream/" + encodeURIComponent(jobId),
      { signal, headers: { Accept: "text/event-stream" } });
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let type = "message", data = "";
        for (const line of chunk.split("\n")) {
          if (line.startsWith("event:")) type = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) onEvent(type, JSON.parse(data));
      }
    }
  };

  // Save a protected URL as a file (a plain link could not carry the bearer header).
  ES.download = async (path, filename) => {
    const blob = await (await request(path)).blob();
    const url = URL.createObjectURL(blob);
    const a = ES.el("a", { href: url, download: filename });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  // el("td", {class: "num"}, "text", child, ...): attributes set one by one, strings as text.
  ES.el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };
  ES.clear = (node) => { while (node.firstChild) node.firstChild.remove(); return node; };

  const nf = (digits) => new Intl.NumberFormat("en", { maximumFractionDigits: digits,
    minimumFractionDigits: digits });
  ES.num = (value, digits = 2) => (value === null || value === undefined || Number.isNaN(value))
    ? "–" : nf(digits).format(value);
  ES.pct = (value, digits = 1) => value === null || value === undefined ? "–"
    : nf(digits).format(100 * value) + " %";
  ES.seconds = (s) => {
    if (s === null || s === undefined || !Number.isFinite(s)) return "–";
    if (s < 60) return nf(s < 10 ? 1 : 0).format(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  };
  ES.interval = (ci) => (Array.isArray(ci) ? "[" + ES.num(ci[0]) + ", " + ES.num(ci[1]) + "]" : "");

  const rubricCache = {};
  ES.rubric = async (name) => {
    if (!rubricCache[name]) rubricCache[name] = ES.api("/rubrics/" + encodeURIComponent(name));
    return rubricCache[name];
  };
})(window.ES);
