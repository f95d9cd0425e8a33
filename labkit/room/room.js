// The room page: polls /api/room every second and rebuilds the grid.
// Every student-supplied string goes through textContent or setAttribute, never innerHTML,
// so a name like <img src=x onerror=...> is shown as text (and the CSP forbids inline script anyway).
// Names sit in <bdi> elements: right-to-left text in one name cannot reorder what is around it.
// The token is only ever sent as an Authorization header (exports too: fetched, then saved as a file).
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const LABELS = { doctor: "doctor" };
let last = null;
let lastOk = null;  // when the view on screen was fetched
let shown = "";     // the seats and counts on screen: the grid is rebuilt only when they change
let selected = null;  // {kind: "cell", seat, col} or {kind: "phase", seat, phase}: what the detail panel shows
let view = "seats";   // or "laptops"
let laptops = null;   // the last /api/laptops answer
let shownLaptops = "";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function ago(seconds) {
  if (seconds === null || !Number.isFinite(seconds)) return "time unknown";
  if (seconds < 60) return Math.max(0, Math.round(seconds)) + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

function since(room, t) {
  return t === null || t === undefined ? null : room.now - t;
}

function clock(t) {
  return t === null || t === undefined ? "an unknown time" : new Date(t * 1000).toLocaleTimeString();
}

function needsHelp(seat, now, minutes) {
  return Object.entries(seat.cells).some(([col, cell]) =>
    cell.state === "fail" && (col === "doctor" || cell.since === null || now - cell.since > minutes * 60));
}

function nameNode(tag, seat, cls) {
  const node = el(tag, undefined, cls);
  node.appendChild(el("bdi", seat.name));
  if (seat.duplicate) {
    const mark = el("span", "same name", "dup");
    mark.setAttribute("title", "another seat has this name too: two laptops, or someone else using it");
    node.appendChild(mark);
  }
  return node;
}

// The panel shows the cell as it is now: the report that decided it, when, and its first problem.
function showDetail(room) {
  if (selected && selected.kind === "phase") return showPhase();
  const panel = document.getElementById("detail");
  const seat = selected && room && room.seats.find((s) => s.seat === selected.seat);
  const cell = seat && seat.cells[selected.col];
  if (!cell) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  panel.dataset.seat = seat.seat;
  panel.dataset.col = selected.col;
  panel.dataset.state = cell.state;
  const title = document.getElementById("detail-title");
  title.replaceChildren(el("bdi", seat.name), " (", el("bdi", seat.host), ") — " +
    (LABELS[selected.col] || "section " + selected.col) + ": " + cell.state);
  document.getElementById("detail-report").textContent = (cell.report ? "report #" + cell.report : "a report") +
    " of " + clock(cell.at) + " (" + ago(since(room, cell.at)) + "), " + cell.state + " since " + clock(cell.since);
  const first = cell.first || {};
  const none = cell.state === "pass" ? "— (nothing failed)" : "—";
  document.getElementById("detail-check").textContent = first.check || none;
  document.getElementById("detail-found").textContent = first.detail || "—";
  document.getElementById("detail-hint").textContent = first.hint || "—";
}

function refresh(room) {
  const key = JSON.stringify([room.seats, room.counts]);
  if (key !== shown) {
    shown = key;
    render(room);
    return;
  }
  for (const row of document.querySelectorAll("#seats tr")) {  // only "last seen" moves with time
    const seat = room.seats.find((s) => s.seat === row.dataset.seat);
    if (seat) row.querySelector("td.seen").textContent = ago(since(room, seat.last_seen));
  }
  showDetail(room);
}

function render(room) {
  const head = document.getElementById("head");
  while (head.children.length > 2) head.lastChild.remove();
  for (const col of room.columns) head.appendChild(el("th", LABELS[col] || col));

  const onlyHelp = document.getElementById("needs-help").checked;
  const minutes = Number(document.getElementById("minutes").value) || 0;
  const body = document.getElementById("seats");
  body.replaceChildren();
  for (const seat of room.seats) {
    if (onlyHelp && !needsHelp(seat, room.now, minutes)) continue;
    const row = el("tr");
    row.dataset.seat = seat.seat;
    const name = nameNode("th", seat, "name");
    name.setAttribute("title", seat.host);
    row.appendChild(name);
    row.appendChild(el("td", ago(since(room, seat.last_seen)), "seen"));
    for (const col of room.columns) {
      const cell = seat.cells[col];
      const td = el("td", cell ? cell.state : "", "cell " + (cell ? cell.state : "none"));
      td.dataset.col = col;
      if (cell) {
        const first = cell.first || {};
        td.setAttribute("title", [first.check, first.detail, first.hint].filter(Boolean).join(" — ") ||
          cell.state + " " + ago(since(room, cell.at)));
        td.addEventListener("click", () => {
          selected = { kind: "cell", seat: seat.seat, col: col };
          showDetail(last);
        });
      }
      row.appendChild(td);
    }
    body.appendChild(row);
  }
  const counts = document.getElementById("counts");
  while (counts.children.length > 2) counts.lastChild.remove();
  for (const col of room.columns) {
    const c = room.counts[col] || {};
    counts.appendChild(el("td", ["pass", "warn", "fail"].filter((s) => c[s]).map((s) => c[s] + " " + s).join(", ")));
  }
  document.getElementById("empty").hidden = room.seats.length > 0;
  showDetail(room);
}

// --- the laptops view: each seat's latest acceptance run ---

function showPhase() {
  const panel = document.getElementById("detail");
  const lap = laptops && laptops.laptops.find((l) => l.seat === selected.seat);
  const phase = lap && lap.phases[selected.phase];
  if (!phase) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  panel.dataset.seat = lap.seat;
  panel.dataset.col = selected.phase;
  panel.dataset.state = phase.status;
  document.getElementById("detail-title").replaceChildren(el("bdi", lap.name), " (", el("bdi", lap.host), ") — " +
    "acceptance phase " + selected.phase + ": " + phase.status);
  document.getElementById("detail-report").textContent = "report #" + lap.report + ": acceptance run started " +
    (lap.started || "at an unknown time") + ", received " + clock(lap.at) +
    (phase.seconds !== undefined ? "; this phase took " + phase.seconds + " s" : "");
  document.getElementById("detail-check").textContent = selected.phase;
  document.getElementById("detail-found").textContent = phase.error || phase.reason || "—";
  document.getElementById("detail-hint").textContent = phase.hint || "—";
}

function renderLaptops(data) {
  const head = document.getElementById("laptops-head");
  head.replaceChildren(el("th", "seat"), el("th", "run started"));
  for (const fact of data.shown) head.appendChild(el("th", fact));
  for (const phase of data.phases) head.appendChild(el("th", phase));
  const body = document.getElementById("laptops-rows");
  body.replaceChildren();
  for (const lap of data.laptops) {
    const row = el("tr");
    row.dataset.seat = lap.seat;
    const name = el("th", undefined, "name");
    name.appendChild(el("bdi", lap.name));
    name.setAttribute("title", lap.host);
    row.appendChild(name);
    row.appendChild(el("td", lap.started || "—", "fact"));
    for (const fact of data.shown) {
      const td = el("td", undefined, "fact");
      td.appendChild(el("bdi", lap.laptop[fact] || "—"));
      row.appendChild(td);
    }
    for (const name of data.phases) {
      const phase = lap.phases[name];
      const td = el("td", phase ? phase.status : "", "cell " + (phase ? phase.status : "none"));
      td.dataset.phase = name;
      if (phase) {
        if (phase.seconds !== undefined) td.appendChild(el("small", phase.seconds + " s"));
        td.setAttribute("title", [phase.error || phase.reason, phase.hint].filter(Boolean).join(" — ") || phase.status);
        td.addEventListener("click", () => {
          selected = { kind: "phase", seat: lap.seat, phase: name };
          showPhase();
        });
      }
      row.appendChild(td);
    }
    body.appendChild(row);
  }
  document.getElementById("laptops-empty").hidden = data.laptops.length > 0;
}

async function pollLaptops() {
  const answer = await fetch("/api/laptops", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  if (!answer.ok) return false;
  laptops = await answer.json();
  const key = JSON.stringify([laptops.laptops, laptops.phases]);
  if (key !== shownLaptops) {
    shownLaptops = key;
    renderLaptops(laptops);
  }
  if (selected && selected.kind === "phase") showPhase();
  return true;
}

function switchView(to) {
  view = to;
  selected = null;
  document.getElementById("detail").hidden = true;
  document.getElementById("seats-view").hidden = to !== "seats";
  document.getElementById("laptops-view").hidden = to !== "laptops";
  document.getElementById("seat-controls").hidden = to !== "seats";  // its filter and exports are the grid's
  document.getElementById("show-seats").setAttribute("aria-pressed", String(to === "seats"));
  document.getElementById("show-laptops").setAttribute("aria-pressed", String(to === "laptops"));
  if (to === "laptops") pollLaptops().catch(() => {});
}

// A failed poll is said in a red bar above the grid, with the age of what is still shown.
function trouble(text, retrying = true) {
  const bar = document.getElementById("alert");
  bar.textContent = text + (lastOk ? "; the grid below is from " + lastOk.toLocaleTimeString() : "") +
    (retrying ? ". Retrying every second." : ". Stopped asking: reload the page with that URL.");
  bar.hidden = false;
  document.body.classList.add("stale");
  document.getElementById("status").textContent = "not updated since " +
    (lastOk ? lastOk.toLocaleTimeString() : "the page opened");
}

async function poll() {
  try {
    const answer = await fetch("/api/room", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (answer.status === 403) {  // asking again cannot help (and the room holds off an address refused often)
      trouble("The room refuses this page: open the page URL that class.serve wrote (it carries the token)", false);
      return;
    } else if (!answer.ok) {
      trouble("The room answered " + answer.status + " " + answer.statusText + " at " + new Date().toLocaleTimeString());
    } else if (view === "laptops" && !(await pollLaptops())) {
      trouble("The room did not give the laptops at " + new Date().toLocaleTimeString());
    } else {
      const room = await answer.json();
      last = room;
      lastOk = new Date();
      refresh(room);
      document.getElementById("alert").hidden = true;
      document.body.classList.remove("stale");
      document.getElementById("status").textContent = room.seats.length + " seat(s), updated " +
        lastOk.toLocaleTimeString();
    }
  } catch (e) {
    trouble("The room is not reachable (" + new Date().toLocaleTimeString() + ")");
  }
  setTimeout(poll, 1000);
}

async function download(path, filename) {
  try {
    const answer = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (!answer.ok) throw new Error(answer.status + " " + answer.statusText);
    const url = URL.createObjectURL(await answer.blob());
    const a = el("a");
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    trouble("The export " + filename + " failed (" + e.message + ")");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const [id, path, filename] of [["export-csv", "/api/export.csv", "room.csv"],
    ["export-json", "/api/export.json", "room.json"], ["laptops-csv", "/api/laptops.csv", "laptops.csv"],
    ["laptops-json", "/api/laptops.json", "laptops.json"]]) {
    document.getElementById(id).addEventListener("click", (event) => {
      event.preventDefault();
      download(path, filename);
    });
  }
  document.getElementById("show-seats").addEventListener("click", () => switchView("seats"));
  document.getElementById("show-laptops").addEventListener("click", () => switchView("laptops"));
  for (const id of ["needs-help", "minutes"]) {
    document.getElementById(id).addEventListener("input", () => last && render(last));
  }
  poll();
});
