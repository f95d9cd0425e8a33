"""Test plumbing for the room: the real `invoke class.serve` on loopback, and report envelopes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import requests

from tests.conftest import REPO, free_port, stop_process


class ClassServe:
    """`invoke class.serve --host 127.0.0.1` in its own class directory; started, killed, started again."""

    def __init__(self, directory: Path, *extra: str):
        self.dir = directory
        self.extra = extra
        self.room_port = free_port()
        self.url = f"http://127.0.0.1:{self.room_port}"
        self.proc: Optional[subprocess.Popen] = None
        self.lines: list[str] = []

    def start(self) -> "ClassServe":
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
        self.lines = []  # this run's lines
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("invoke")), "class.serve", "--dir", str(self.dir), "--host",
             "127.0.0.1", "--room-port", str(self.room_port), *self.extra],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not any("Press Ctrl-C" in ln for ln in self.lines):
            assert time.monotonic() < deadline and self.proc.poll() is None, "".join(self.lines) + self.proc.stderr.read()
            self.lines.append(self.proc.stdout.readline())
        while True:  # the socket is bound before the line; uvicorn accepts once its loop runs
            try:
                requests.get(self.url + "/", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the room never answered"
                time.sleep(0.05)
        secrets = json.loads((self.dir / "class.json").read_text())
        self.code, self.token = secrets["code"], secrets["token"]
        return self

    def page_url(self) -> str:
        return (self.dir / "page-url").read_text().strip()

    def post(self, envelope, code: Optional[str] = None, key: Optional[str] = None, source: str = "127.0.0.1",
             **kw) -> requests.Response:
        """POST a report from `source` (any 127.x address: a laptop of its own), with the seat's key unless given."""
        from labkit.room.store import seat_key

        if key is None:
            key = seat_key(self.token, envelope["seat"]) if isinstance(envelope, dict) else ""
        with from_address(source) as s:
            return s.post(self.url + "/api/reports", timeout=5, **({"json": envelope} if "data" not in kw else {}),
                          headers={"X-Class-Code": self.code if code is None else code, "X-Seat-Key": key}, **kw)

    def join(self, name: str = "Ana", source: str = "127.0.0.1", **old) -> requests.Response:
        with from_address(source) as s:
            return s.post(self.url + "/api/join", json=dict(name=name, **old), headers={"X-Class-Code": self.code},
                          timeout=5)

    def stored(self) -> int:
        import sqlite3

        db = sqlite3.connect(self.dir / "room.db")
        try:
            return db.execute("SELECT count(*) FROM reports").fetchone()[0]
        finally:
            db.close()

    def get(self, path: str, token: Optional[str] = None) -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"Bearer {self.token if token is None else token}"},
                            timeout=5)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> tuple:
        """Ctrl-C: (exit code, stdout rest, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


class _SourceAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(source: str) -> requests.Session:
    """A session whose connections come from `source` (Linux answers all of 127.0.0.0/8 on loopback)."""
    session = requests.Session()
    session.mount("http://", _SourceAdapter(source))
    return session


DOCTOR_FAIL = [{"name": "memory", "status": "fail", "detail": "3.1 GiB available", "fix": "close other programs"},
               {"name": "vagrant", "status": "ok", "detail": "Vagrant 2.3.4", "fix": ""}]
DOCTOR_OK = [{"name": "memory", "status": "ok", "detail": "9.0 GiB available", "fix": ""}]


def envelope(seat: str, name: str = "Ana", report=None, kind: str = "doctor") -> dict:
    now = time.time()
    return {"seat": seat, "name": name, "host": "laptop", "kind": kind, "taken": now, "sent": now,
            "report": DOCTOR_OK if report is None else report}


def seat(n: int) -> str:
    return f"{n:016x}"
