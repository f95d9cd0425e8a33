"""The class directory (0700): its code and instructor token (class.json) and the room (room.db, SQLite
WAL), every file 0600.

Every accepted report is one row of `reports`, kept with its time (a student's history), once: a
report sent again (its answer came too late) is known by seat and `taken` time. `seats` and
`cells` are the page's current view, updated in the same transaction. "Clear the room" empties the
view only: history stays. WAL with synchronous=FULL: a report answered 2xx survives a SIGKILL.

Seats are the server's: class.join gets a seat id and its key, an HMAC of the instructor's token and
the seat (nothing to store: the server recomputes it), and every report must carry the key. A room
holds at most MAX_SEATS seats and MAX_SEAT_BYTES of reports per seat (table `quota`).

What the view and history give out is finite: a store written before numbers were checked may hold
Infinity or NaN (they read back as null), so it can never break the page.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from labkit.room import schema

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a projector
CODE_LENGTH = 6
MAX_SEATS = 300                    # a class is 20-60 laptops; beyond this somebody is making seats
MAX_SEAT_BYTES = 32 * 1024 * 1024  # a seat's reports: 1600 full verify reports (20 KB each)

TABLES = """
CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, seat TEXT NOT NULL, name TEXT NOT NULL,
    host TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL, received REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_seat ON reports (seat, at);
CREATE TABLE IF NOT EXISTS taken (seat TEXT NOT NULL, taken REAL NOT NULL, report INTEGER NOT NULL,
    PRIMARY KEY (seat, taken));
CREATE TABLE IF NOT EXISTS seats (seat TEXT PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cells (seat TEXT NOT NULL, col TEXT NOT NULL, state TEXT NOT NULL,
    since REAL NOT NULL, at REAL NOT NULL, first TEXT, PRIMARY KEY (seat, col));
"""
QUOTA = "CREATE TABLE quota (seat TEXT PRIMARY KEY, bytes INTEGER NOT NULL)"


class Refused(Exception):
    """A valid report the room will not keep (room full, seat over its quota): status and one line."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text


class Damaged(Exception):
    """class.json exists but cannot be read: the class's code and token are not silently replaced."""


def draw_code(old: str = "") -> str:
    """A class code (never the same as `old`)."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if code != old:
            return code


def private_dir(directory: Path) -> Path:
    """The class directory, made or tightened to 0700 (it holds the token and every student's reports)."""
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def class_secrets(directory: Path, new_code: bool = False) -> tuple:
    """({"code", "token"}, what changed or "") of this class: made once, then the same after every restart.

    `new_code` draws a new class code and keeps the token (the page URL and every seat's key stay). A
    class.json that exists but cannot be read raises Damaged unless `new_code`: the code never changes
    without the instructor knowing, since every student would have to join again.
    """
    from labkit.fsutil import write_atomic

    path = private_dir(directory) / "class.json"
    data = None
    try:
        data = json.loads(path.read_text())
        if not (isinstance(data, dict) and isinstance(data.get("code"), str) and isinstance(data.get("token"), str)):
            raise ValueError("no code and token in it")
    except FileNotFoundError:
        data, changed = None, "no class.json: a new class code and instructor token (students join again)"
    except (OSError, ValueError) as exc:
        if not new_code:
            raise Damaged(f"{path} is damaged ({exc})") from None
        data, changed = None, "class.json was damaged: new code and instructor token (every student joins again)"
    else:
        os.chmod(path, 0o600)
        if not new_code:
            return data, ""
        changed = "a new class code (the instructor token and the students' seats stay)"
    token = data["token"] if data else secrets.token_urlsafe(24)
    data = {"code": draw_code(data["code"] if data else ""), "token": token}
    write_atomic(path, json.dumps(data) + "\n", mode=0o600)
    return data, changed


def seat_key(token: str, seat: str) -> str:
    """The seat's key: only the server (which holds the token) can make it; nothing to store."""
    return hmac.new(token.encode(), b"labkit-seat:" + seat.encode(), hashlib.sha256).hexdigest()[:32]


def finite(value):
    """A stored number as the page may get it: None for Infinity and NaN (written before they were refused)."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _loads(text: str):
    return json.loads(text, parse_constant=lambda _: None)


class Room:
    """The reports of one class. Thread-safe: the web app calls it from its worker threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        private_dir(self.path.parent)
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # SQLite gives -wal and -shm its mode
        for old in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            if old.exists():
                os.chmod(old, 0o600)  # a room made by an older labkit was 0644
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(TABLES)
        if "report" not in [row[1] for row in self._db.execute("PRAGMA table_info(cells)")]:
            self._db.execute("ALTER TABLE cells ADD COLUMN report INTEGER")  # which report decided the cell
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'quota'").fetchone() is None:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(QUOTA)
            self._db.execute("INSERT INTO quota SELECT seat, sum(length(CAST(body AS BLOB))) FROM reports GROUP BY seat")
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, envelope: dict, received: float) -> int:
        """Store a valid envelope (schema.problem() is None); returns the report's id. Raises Refused."""
        # the report's time on the server's clock: a queued report keeps the age it had when sent
        at = received - max(0.0, float(envelope["sent"]) - float(envelope["taken"]))
        seat, name, host = envelope["seat"], envelope["name"], envelope.get("host", "")
        new = schema.cells(envelope["kind"], envelope["report"])
        body = json.dumps(envelope["report"], ensure_ascii=False, allow_nan=False)
        size = len(body.encode("utf-8"))
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                again = db.execute("SELECT report FROM taken WHERE seat = ? AND taken = ?",
                                   (seat, envelope["taken"])).fetchone()
                if again is not None:  # sent again after an answer that came too late: stored once
                    db.execute("COMMIT")
                    return again[0]
                used = db.execute("SELECT bytes FROM quota WHERE seat = ?", (seat,)).fetchone()
                if used is None and db.execute("SELECT count(*) FROM quota").fetchone()[0] >= MAX_SEATS:
                    raise Refused(409, f"the room is full ({MAX_SEATS} seats); the instructor can start a new class")
                if used is not None and used[0] + size > MAX_SEAT_BYTES:
                    raise Refused(413, f"this seat has stored its {MAX_SEAT_BYTES >> 20} MB of reports")
                rid = db.execute("INSERT INTO reports (seat, name, host, kind, at, received, body) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (seat, name, host, envelope["kind"], at, received,
                                                                  body)).lastrowid
                db.execute("INSERT INTO taken VALUES (?, ?, ?)", (seat, envelope["taken"], rid))
                db.execute("INSERT INTO quota VALUES (?, ?) ON CONFLICT (seat) DO UPDATE SET bytes = bytes + "
                           "excluded.bytes", (seat, size))
                db.execute("INSERT INTO seats VALUES (?, ?, ?, ?, ?) ON CONFLICT (seat) DO UPDATE SET "
                           "name = excluded.name, host = excluded.host, last_seen = excluded.last_seen",
                           (seat, name, host, received, received))
                for col, (state, first) in new.items():
                    old = db.execute("SELECT state, since, at FROM cells WHERE seat = ? AND col = ?",
                                     (seat, col)).fetchone()
                    if old is not None and old[2] > at:
                        continue  # a newer report already decided this cell
                    since = old[1] if old is not None and old[0] == state else at
                    db.execute("INSERT OR REPLACE INTO cells (seat, col, state, since, at, first, report) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (seat, col, state, since, at, None if first is None else json.dumps(first), rid))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite has already rolled back after some errors (a full disk)
                    db.execute("ROLLBACK")
                raise
        return rid

    def view(self, now: float | None = None) -> dict:
        """The page's data: every seat with its cells, and per column how many seats are in each state.

        A seat whose name another seat also has (ignoring case) is marked `duplicate`: the page flags it.
        """
        with self._lock:
            seats = self._db.execute("SELECT seat, name, host, first_seen, last_seen FROM seats "
                                     "ORDER BY name COLLATE NOCASE, seat").fetchall()
            cells = self._db.execute("SELECT seat, col, state, since, at, first, report FROM cells").fetchall()
        by_seat: dict = {}
        for seat, col, state, since, at, first, report in cells:
            by_seat.setdefault(seat, {})[col] = {"state": state, "since": finite(since), "at": finite(at),
                                                 "report": report, "first": None if first is None else _loads(first)}
        counts = {col: {} for col in schema.COLUMNS}
        for _, col, state, *_ in cells:
            counts[col][state] = counts[col].get(state, 0) + 1
        names: dict = {}
        for _, n, *_ in seats:
            names[n.casefold()] = names.get(n.casefold(), 0) + 1
        return {"now": time.time() if now is None else now, "columns": schema.COLUMNS, "counts": counts,
                "seats": [{"seat": s, "name": n, "host": h, "first_seen": finite(f), "last_seen": finite(ls),
                           "duplicate": names[n.casefold()] > 1, "cells": by_seat.get(s, {})}
                          for s, n, h, f, ls in seats]}

    def history(self, seat: str) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, kind, at, received, body FROM reports WHERE seat = ? ORDER BY at, id",
                                    (seat,)).fetchall()
        return [{"id": i, "kind": k, "at": finite(at), "received": finite(r), "report": _loads(b)}
                for i, k, at, r, b in rows]

    def laptops(self) -> list:
        """(seat, name, host, at, id, report) of each seat's latest acceptance report, by name."""
        with self._lock:
            rows = self._db.execute("SELECT seat, name, host, at, id, body FROM reports WHERE kind = 'acceptance' "
                                    "ORDER BY seat, at DESC, id DESC").fetchall()
        latest: dict = {}
        for seat, name, host, at, rid, body in rows:
            latest.setdefault(seat, (seat, name, host, finite(at), rid, _loads(body)))
        return sorted(latest.values(), key=lambda r: (r[1].casefold(), r[0]))

    def full(self) -> bool:
        """No room for one more seat."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM quota").fetchone()[0] >= MAX_SEATS

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM reports").fetchone()[0]

    def clear(self) -> None:
        """Empty the page (a new lesson); every report stays in history."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM cells")
                self._db.execute("DELETE FROM seats")
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise


def spreadsheet_safe(value) -> str:
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ (a formula) gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(view: dict) -> str:
    """The room as CSV: one row per seat, per column its state and first failing check.

    A cell starting with = + - @ is prefixed with ' so a spreadsheet shows a student's name as text.
    """
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "host", "last_seen_utc"] + [h for c in view["columns"] for h in (c, f"{c}_problem")])
    for s in view["seats"]:
        seen = s["last_seen"]
        row = [s["name"], s["host"], "" if seen is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seen))]
        for col in view["columns"]:
            cell = s["cells"].get(col)
            first = (cell or {}).get("first") or {}
            row += [cell["state"] if cell else "", ": ".join(x for x in (first.get("check"), first.get("detail")) if x)]
        writer.writerow([spreadsheet_safe(v) for v in row])
    return out.getvalue()
