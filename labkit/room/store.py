"""The class directory: its code and instructor token (class.json, 0600) and the room (room.db, SQLite WAL).

Every accepted report is one row of `reports`, kept with its time (a student's history), once: a
report sent again (its answer came too late) is known by seat and `taken` time. `seats` and
`cells` are the page's current view, updated in the same transaction. "Clear the room" empties the
view only: history stays. WAL with synchronous=FULL: a report answered 2xx survives a SIGKILL.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from labkit.room import schema

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a projector
CODE_LENGTH = 6

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


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def class_secrets(directory: Path) -> dict:
    """{"code", "token"} of this class: made once, then the same after every restart (students stay joined)."""
    from labkit.fsutil import write_atomic

    path = Path(directory) / "class.json"
    try:
        data = json.loads(path.read_text())
        if isinstance(data.get("code"), str) and isinstance(data.get("token"), str):
            return data
    except (OSError, ValueError):
        pass
    data = {"code": new_code(), "token": secrets.token_urlsafe(24)}
    write_atomic(path, json.dumps(data) + "\n", mode=0o600)
    return data


class Room:
    """The reports of one class. Thread-safe: the web app calls it from its worker threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(TABLES)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, envelope: dict, received: float) -> int:
        """Store a valid envelope (schema.problem() is None); returns the report's id."""
        # the report's time on the server's clock: a queued report keeps the age it had when sent
        at = received - max(0.0, float(envelope["sent"]) - float(envelope["taken"]))
        seat, name, host = envelope["seat"], envelope["name"], envelope.get("host", "")
        new = schema.cells(envelope["kind"], envelope["report"])
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                again = db.execute("SELECT report FROM taken WHERE seat = ? AND taken = ?",
                                   (seat, envelope["taken"])).fetchone()
                if again is not None:  # sent again after an answer that came too late: stored once
                    db.execute("COMMIT")
                    return again[0]
                rid = db.execute("INSERT INTO reports (seat, name, host, kind, at, received, body) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (seat, name, host, envelope["kind"], at, received,
                                                                  json.dumps(envelope["report"]))).lastrowid
                db.execute("INSERT INTO taken VALUES (?, ?, ?)", (seat, envelope["taken"], rid))
                db.execute("INSERT INTO seats VALUES (?, ?, ?, ?, ?) ON CONFLICT (seat) DO UPDATE SET "
                           "name = excluded.name, host = excluded.host, last_seen = excluded.last_seen",
                           (seat, name, host, received, received))
                for col, (state, first) in new.items():
                    old = db.execute("SELECT state, since, at FROM cells WHERE seat = ? AND col = ?",
                                     (seat, col)).fetchone()
                    if old is not None and old[2] > at:
                        continue  # a newer report already decided this cell
                    since = old[1] if old is not None and old[0] == state else at
                    db.execute("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?)",
                               (seat, col, state, since, at, None if first is None else json.dumps(first)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return rid

    def view(self, now: float | None = None) -> dict:
        """The page's data: every seat with its cells, and per column how many seats are in each state."""
        with self._lock:
            seats = self._db.execute("SELECT seat, name, host, first_seen, last_seen FROM seats "
                                     "ORDER BY name COLLATE NOCASE, seat").fetchall()
            cells = self._db.execute("SELECT seat, col, state, since, at, first FROM cells").fetchall()
        by_seat: dict = {}
        for seat, col, state, since, at, first in cells:
            by_seat.setdefault(seat, {})[col] = {"state": state, "since": since, "at": at,
                                                 "first": None if first is None else json.loads(first)}
        counts = {col: {} for col in schema.COLUMNS}
        for _, col, state, *_ in cells:
            counts[col][state] = counts[col].get(state, 0) + 1
        return {"now": time.time() if now is None else now, "columns": schema.COLUMNS, "counts": counts,
                "seats": [{"seat": s, "name": n, "host": h, "first_seen": f, "last_seen": ls,
                           "cells": by_seat.get(s, {})} for s, n, h, f, ls in seats]}

    def history(self, seat: str) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, kind, at, received, body FROM reports WHERE seat = ? ORDER BY at, id",
                                    (seat,)).fetchall()
        return [{"id": i, "kind": k, "at": at, "received": r, "report": json.loads(b)} for i, k, at, r, b in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM reports").fetchone()[0]

    def clear(self) -> None:
        """Empty the page (a new lesson); every report stays in history."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM cells")
            self._db.execute("DELETE FROM seats")
            self._db.execute("COMMIT")


def csv_text(view: dict) -> str:
    """The room as CSV: one row per seat, per column its state and first failing check.

    A cell starting with = + - @ is prefixed with ' so a spreadsheet shows a student's name as text.
    """
    import csv
    import io

    def safe(value) -> str:
        text = "" if value is None else str(value)
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "host", "last_seen_utc"] + [h for c in view["columns"] for h in (c, f"{c}_problem")])
    for s in view["seats"]:
        row = [s["name"], s["host"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s["last_seen"]))]
        for col in view["columns"]:
            cell = s["cells"].get(col)
            first = (cell or {}).get("first") or {}
            row += [cell["state"] if cell else "", ": ".join(x for x in (first.get("check"), first.get("detail")) if x)]
        writer.writerow([safe(v) for v in row])
    return out.getvalue()
