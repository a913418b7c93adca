// The learner's lab page: instructions, one terminal per host, Check / Hint / Solve.
"use strict";
(function () {
  const root = document.querySelector(".lab");
  const lab = root.dataset.lab;
  const hosts = root.dataset.hosts.split(",");
  const $ = (id) => document.getElementById(id);
  const terminals = {};
  let state = null;
  let hintsShown = 0;
  let busy = false;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  async function api(path, method) {
    const response = await fetch(`/api/lab/${encodeURIComponent(lab)}${path}`, {
      method: method || "GET", headers: { "X-Opslabs": "1" }, credentials: "same-origin",
    });
    let body = {};
    try { body = await response.json(); } catch (err) { body = { error: `the server answered ${response.status}` }; }
    if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
    return body;
  }

  function say(text) { $("lab-status").textContent = text; }

  function render(next) {
    const before = state;
    state = next;
    $("progress").textContent = next.progress.text;
    const running = next.status === "running";
    const start = $("start");
    start.hidden = running;
    start.textContent = next.progress.done.length ? `Continue at step ${next.progress.current || next.progress.total}` : "Start lab";
    for (const id of ["check", "hint", "solve", "reconnect"]) $(id).disabled = !running || busy;
    if (!running) say(next.note || "The lab is not running. Press Start to boot your machines.");
    else if (!before || before.status !== "running") say("Your lab is running.");
    const step = next.step;
    if (!before || !before.step || !step || before.step.number !== step.number) hintsShown = 0;
    if (step) {
      $("step-title").textContent = `Step ${step.number} of ${next.progress.total}: ${step.title}`;
      $("step-text").innerHTML = step.html;  // rendered by the server from the lab file, raw HTML escaped
    } else {
      $("step-title").textContent = "Every step is done";
      $("step-text").textContent = "Well done! Pick another lab from All labs.";
    }
    if (running && before && before.status !== "running") reconnectAll();
    if (!running) for (const host of hosts) closeTerminal(host);
    if (running) openTerminal(selectedHost());
  }

  function showReport(report, solved) {
    const results = $("results");
    const heading = report.passed ? `Step ${report.step} passed.` : `Step ${report.step} is not done yet.`;
    const list = el("ul", { class: "checks" });
    for (const check of report.checks) {
      const item = el("li", { class: check.passed ? "pass" : "fail" },
        el("span", { class: "mark" }, check.passed ? "✔ passed: " : "✘ failed: "), `[${check.host}] ${check.description}`);
      if (!check.passed) {
        if (check.message) item.append(el("div", { class: "message" }, check.message));
        item.append(el("div", { class: "found" }, `found: ${check.actual}`));
      }
      list.append(item);
    }
    const parts = [];
    if (solved) parts.push(el("p", {}, `Applied the reference solution of step ${report.step}.`));
    parts.push(el("p", { class: report.passed ? "passed" : "failed" }, heading), list);
    if (report.passed && report.state.step) parts.push(el("p", {}, `Next: step ${report.state.step.number}, ${report.state.step.title}.`));
    results.replaceChildren(...parts);
  }

  async function act(name, work) {
    if (busy) return;
    busy = true;
    for (const id of ["check", "hint", "solve", "start"]) $(id).disabled = true;
    root.setAttribute("aria-busy", "true");
    try { await work(); } catch (err) { $("results").replaceChildren(el("p", { class: "error" }, `${name}: ${err.message}`)); }
    finally {
      busy = false;
      root.removeAttribute("aria-busy");
      $("start").disabled = false;
      if (state) render(state);
    }
  }

  $("start").addEventListener("click", () => act("Start", async () => {
    say("Starting your lab… (its machines boot from the cache, a few seconds)");
    render(await api("/start", "POST"));
  }));
  $("check").addEventListener("click", () => act("Check", async () => {
    $("results").replaceChildren(el("p", {}, "Checking…"));
    const report = await api("/check", "POST");
    showReport(report, false);
    render(report.state);
  }));
  $("solve").addEventListener("click", () => act("Solve step", async () => {
    $("results").replaceChildren(el("p", {}, "Running the reference solution…"));
    const report = await api("/solve", "POST");
    showReport(report, true);
    render(report.state);
  }));
  $("hint").addEventListener("click", () => act("Hint", async () => {
    const answer = await api("/hints", "POST");
    const box = $("hints");
    if (!answer.hints.length) { box.replaceChildren(el("p", {}, "This step has no hint.")); return; }
    hintsShown = Math.min(hintsShown + 1, answer.hints.length);
    const list = el("ol", { class: "hints" });
    for (const html of answer.hints.slice(0, hintsShown)) { const li = el("li", {}); li.innerHTML = html; list.append(li); }
    box.replaceChildren(el("h3", {}, `Hint ${hintsShown} of ${answer.hints.length}`), list);
  }));
  $("reconnect").addEventListener("click", () => reconnectAll());

  // --- terminals ---

  function selectedHost() {
    const tab = document.querySelector('.hosts [aria-selected="true"]');
    return tab ? tab.dataset.host : hosts[0];
  }

  function reconnectAll() {
    for (const host of hosts) closeTerminal(host);
    if (state && state.status === "running") openTerminal(selectedHost());
  }

  function closeTerminal(host) {
    const t = terminals[host];
    if (!t) return;
    t.closing = true;
    if (t.ws) t.ws.close();
    t.term.dispose();
    delete terminals[host];
  }

  function openTerminal(host) {
    if (terminals[host]) { terminals[host].fit.fit(); return; }
    const box = $(`term-${host}`);
    box.replaceChildren();
    const term = new Terminal({ cursorBlink: true, convertEol: false, fontSize: 14, screenReaderMode: true,
      theme: { background: "#1e1e1e", foreground: "#f0f0f0" } });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box);
    if (term.textarea) term.textarea.setAttribute("aria-label", `Terminal on ${host}`);
    fit.fit();
    const t = { term, fit, ws: null, closing: false };
    terminals[host] = t;
    let escaped = false;  // Escape then Tab leaves the terminal; Tab alone completes in the shell
    term.attachCustomKeyEventHandler((event) => {
      if (event.type !== "keydown") return true;
      if (event.key === "Tab" && escaped) { escaped = false; return false; }
      escaped = event.key === "Escape";
      return true;
    });
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/lab/${encodeURIComponent(lab)}/host/${encodeURIComponent(host)}?cols=${term.cols}&rows=${term.rows}`);
    ws.binaryType = "arraybuffer";
    t.ws = ws;
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") { term.write(new Uint8Array(event.data)); return; }
      const message = JSON.parse(event.data);
      if (message.type === "error") {
        term.write(`\r\n\x1b[31m${message.message}\x1b[0m\r\n`);
        say(message.message);
      } else if (message.type === "closed") {
        term.write(`\r\n${message.message}\r\n`);
        say(message.message);
        refresh();
      }
    };
    ws.onclose = () => { if (!t.closing) term.write("\r\n[disconnected: Reconnect terminal opens a new shell]\r\n"); };
    term.onData((data) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "input", data })); });
    term.onResize(({ cols, rows }) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols, rows })); });
  }

  const tabs = Array.from(document.querySelectorAll('.hosts [role="tab"]'));
  function select(tab) {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.tabIndex = on ? 0 : -1;
      $(`term-${other.dataset.host}`).hidden = !on;
    }
    if (state && state.status === "running") openTerminal(tab.dataset.host);
    tab.focus();
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const move = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (move) { event.preventDefault(); select(tabs[(i + move + tabs.length) % tabs.length]); }
      if (event.key === "Home") { event.preventDefault(); select(tabs[0]); }
      if (event.key === "End") { event.preventDefault(); select(tabs[tabs.length - 1]); }
    });
  });
  window.addEventListener("resize", () => { for (const t of Object.values(terminals)) t.fit.fit(); });

  async function refresh() {
    try {
      const next = await api("");
      if (!busy) render(next);
    } catch (err) { say(err.message); }
  }
  refresh();
  setInterval(() => { if (!busy && !document.hidden) refresh(); }, 5000);
})();
