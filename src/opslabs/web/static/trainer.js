// The trainer's view of the room: polls the server every 2 s; Stop and Reset per learner.
"use strict";
(function () {
  const body = document.getElementById("room");
  const status = document.getElementById("trainer-status");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  function idle(seconds) {
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }

  async function act(learner, lab, action, name) {
    status.textContent = `${action === "stop" ? "Stopping" : "Resetting"} ${name}'s lab ${lab}…`;
    const response = await fetch(`/api/trainer/learner/${encodeURIComponent(learner)}/lab/${encodeURIComponent(lab)}/${action}`,
      { method: "POST", headers: { "X-Opslabs": "1" }, credentials: "same-origin" });
    const answer = await response.json().catch(() => ({}));
    status.textContent = response.ok ? `${name}'s lab ${lab}: ${action === "stop" ? "stopped" : "reset"}.` : `${action}: ${answer.error || response.status}`;
    load();
  }

  function row(learner) {
    const lab = learner.lab;
    const cells = [el("th", { scope: "row" }, learner.name)];
    if (!lab) {
      cells.push(el("td", {}, "none yet"), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""));
      return el("tr", {}, ...cells);
    }
    const check = lab.last_check && lab.last_check.step
      ? `step ${lab.last_check.step} ${lab.last_check.passed ? "passed" : "failed"}` : "none";
    const step = lab.current ? `step ${lab.current} of ${lab.total}` : `complete (${lab.total} of ${lab.total})`;
    const actions = el("td", {});
    const stop = el("button", { type: "button" }, "Stop");
    stop.setAttribute("aria-label", `Stop ${learner.name}'s lab`);
    stop.disabled = lab.status !== "running";
    stop.addEventListener("click", () => act(learner.id, lab.id, "stop", learner.name));
    const reset = el("button", { type: "button" }, "Reset");
    reset.setAttribute("aria-label", `Reset ${learner.name}'s lab (progress is lost)`);
    reset.addEventListener("click", () => { if (confirm(`Reset ${learner.name}'s lab ${lab.id}? Their progress in it is lost.`)) act(learner.id, lab.id, "reset", learner.name); });
    actions.append(stop, " ", reset);
    cells.push(el("td", {}, lab.id), el("td", {}, lab.status), el("td", { "data-step": String(lab.current || "") }, step),
      el("td", {}, check), el("td", {}, idle(lab.idle)), el("td", {}, lab.engine), actions);
    return el("tr", { "data-learner": learner.id }, ...cells);
  }

  async function load() {
    try {
      const response = await fetch("/api/trainer/room", { credentials: "same-origin" });
      const room = await response.json();
      if (!response.ok) { status.textContent = room.error || `the server answered ${response.status}`; return; }
      const focused = document.activeElement && document.activeElement.getAttribute("aria-label");
      body.replaceChildren(...room.learners.map(row));
      if (focused) { const again = body.querySelector(`[aria-label="${CSS.escape(focused)}"]`); if (again) again.focus(); }
      const running = room.learners.filter((l) => l.lab && l.lab.status === "running").length;
      const seats = room.engines.reduce((sum, e) => sum + e.seats, 0);
      document.getElementById("room-summary").textContent =
        `${room.learners.length} learners, ${running} labs running, ${seats} seats; ` +
        room.engines.map((e) => `${e.engine}: ${e.used}/${e.seats}${e.problem ? ` (${e.problem})` : ""}`).join("; ");
    } catch (err) { status.textContent = `cannot reach the server: ${err.message}`; }
  }
  load();
  setInterval(() => { if (!document.hidden) load(); }, 2000);
})();
