// The room page: polls /api/room every second and rebuilds the grid.
// Every student-supplied string goes through textContent or setAttribute, never innerHTML,
// so a name like <img src=x onerror=...> is shown as text (and the CSP forbids inline script anyway).
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const LABELS = { doctor: "doctor" };
let last = null;
let shown = "";  // the seats and counts on screen: the grid is rebuilt only when they change

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function ago(seconds) {
  if (seconds < 60) return Math.max(0, Math.round(seconds)) + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

function needsHelp(seat, now, minutes) {
  return Object.entries(seat.cells).some(([col, cell]) =>
    cell.state === "fail" && (col === "doctor" || now - cell.since > minutes * 60));
}

function show(seat, col, cell) {
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-title").textContent = seat.name + " (" + seat.host + ") — " +
    (LABELS[col] || "section " + col) + ": " + cell.state;
  const first = cell.first || {};
  document.getElementById("detail-check").textContent = first.check || "—";
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
    if (seat) row.querySelector("td.seen").textContent = ago(room.now - seat.last_seen);
  }
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
    const name = el("th", seat.name, "name");
    name.setAttribute("title", seat.host);
    row.appendChild(name);
    row.appendChild(el("td", ago(room.now - seat.last_seen), "seen"));
    for (const col of room.columns) {
      const cell = seat.cells[col];
      const td = el("td", cell ? cell.state : "", "cell " + (cell ? cell.state : "none"));
      td.dataset.col = col;
      if (cell) {
        const first = cell.first || {};
        td.setAttribute("title", [first.check, first.detail, first.hint].filter(Boolean).join(" — ") ||
          cell.state + " " + ago(room.now - cell.at));
        td.addEventListener("click", () => show(seat, col, cell));
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
}

async function poll() {
  try {
    const answer = await fetch("/api/room", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (answer.status === 403) {
      document.getElementById("status").textContent = "open the page URL that class.serve printed (it carries the token)";
    } else if (answer.ok) {
      last = await answer.json();
      refresh(last);
      document.getElementById("status").textContent = last.seats.length + " seat(s), updated " +
        new Date().toLocaleTimeString();
    }
  } catch (e) {
    document.getElementById("status").textContent = "server not reachable; retrying";
  }
  setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const q = "?token=" + encodeURIComponent(token);
  document.getElementById("export-csv").href = "/api/export.csv" + q;
  document.getElementById("export-json").href = "/api/export.json" + q;
  for (const id of ["needs-help", "minutes"]) {
    document.getElementById(id).addEventListener("input", () => last && render(last));
  }
  poll();
});
