#!/usr/bin/env python3
"""The instructor's room under a classroom's load, and its bundle throughput (docs/room.md quotes the figures).

1. Bundle throughput of `class.serve` (its bundle port) vs `bundle.serve` vs nginx alone: 30 concurrent
   loopback curl clients downloading the same 120 MB file, as benchmarks/bundle_bench.py measures it.
2. A room's load: 60 simulated students post a doctor report every 5 s for --duration seconds (default
   120) while 30 clients download bundle files again and again. Figures: reports accepted vs sent (must
   be equal) and stored in room.db, p50/p99 report latency, page update delay (a poller reading
   /api/room every second, as the page does), bundle throughput under that load vs nginx alone.

    .venv/bin/python benchmarks/room_bench.py [--scale 0.5] [--duration 120] [--students 60] [--clients 30]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bundle_bench as bb  # noqa: E402  (the same data set, curl clients and nginx as bundle_bench)
import requests  # noqa: E402

DOCTOR = [{"name": "memory", "status": "fail", "detail": "3.1 GiB available", "fix": "close other programs"},
          {"name": "vagrant", "status": "ok", "detail": "Vagrant 2.3.4", "fix": ""}]


def start_class(root: Path, lock_file: Path, port: int, room_port: int, class_dir: Path) -> subprocess.Popen:
    invoke = Path(sys.executable).with_name("invoke")
    return subprocess.Popen([str(invoke), "class.serve", "--lock", str(lock_file), "--dest", str(root), "--host",
                             "127.0.0.1", "--port", str(port), "--room-port", str(room_port), "--dir", str(class_dir)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def throughput(start, url_of, n: int, runs: int) -> list[float]:
    port = bb.free_port()
    proc = start(port)
    try:
        url = url_of(port)
        bb.wait_http(url, proc)
        return [n * size_of_served() / bb.clients(url, n) for _ in range(runs)]
    finally:
        bb.stop(proc)


SIZE = {}


def size_of_served() -> int:
    return SIZE["served"]


def downloads(url: str, n: int, stop: threading.Event) -> dict:
    """n curl loops until stop; bytes downloaded in total (whole files only)."""
    done = {"bytes": 0}
    lock = threading.Lock()

    def loop():
        while not stop.is_set():
            if subprocess.run(["curl", "-sS", "-o", "/dev/null", "--fail", url]).returncode == 0:
                with lock:
                    done["bytes"] += SIZE["served"]

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    done["threads"] = threads
    return done


def load(room: str, code: str, token: str, students: int, duration: float, period: float = 5.0) -> dict:
    sent, accepted, latencies, delays = [0], [0], [], []
    lock = threading.Lock()
    end = time.monotonic() + duration

    def student(n: int):
        seat = f"{n:016x}"
        time.sleep(period * n / students)  # spread over the period, as a room would be
        with requests.Session() as s:
            i = 0
            while time.monotonic() < end:
                now = time.time()
                body = {"seat": seat, "name": f"student {n} #{i}", "host": f"laptop-{n}", "kind": "doctor",
                        "taken": now, "sent": now, "report": DOCTOR}
                t = time.perf_counter()
                try:
                    r = s.post(room + "/api/reports", json=body, headers={"X-Class-Code": code}, timeout=10)
                    ok = r.status_code == 201
                except requests.RequestException:
                    ok = False
                took = time.perf_counter() - t
                with lock:
                    sent[0] += 1
                    accepted[0] += ok
                    latencies.append(took)
                    if n == 0 and ok:
                        delays.append((f"student 0 #{i}", time.monotonic()))
                i += 1
                time.sleep(max(0.0, period - took))

    seen_at = {}

    def page():  # what the page does: GET /api/room every second
        with requests.Session() as s:
            while time.monotonic() < end + 2:
                try:
                    view = s.get(room + "/api/room", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
                    name = next((x["name"] for x in view["seats"] if x["seat"] == f"{0:016x}"), None)
                    if name and name not in seen_at:
                        seen_at[name] = time.monotonic()
                except requests.RequestException:
                    pass
                time.sleep(1.0)

    threads = [threading.Thread(target=student, args=(n,)) for n in range(students)] + [threading.Thread(target=page)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    page_delays = [seen_at[name] - at for name, at in delays if name in seen_at]
    return {"sent": sent[0], "accepted": accepted[0], "latencies": sorted(latencies), "page": sorted(page_delays)}


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.5, help="multiply every file size (default 0.5: ~0.35 GB)")
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--students", type=int, default=60)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    for tool in ("curl", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"room_bench: needs {tool} (apt-get install curl nginx-light)")
    with tempfile.TemporaryDirectory(prefix="labkit-room-bench-") as tmp:
        top = Path(tmp)
        root = top / "bundle"
        lock_file = bb.make_bundle(root, args.scale, "sha256")
        bb.warm(root)
        SIZE["served"] = (root / bb.SERVED).stat().st_size
        print(f"machine: {os.cpu_count()} cores; {args.clients} curl clients x {SIZE['served'] / 1e6:.0f} MB")

        def served(port):
            return f"http://127.0.0.1:{port}/{bb.SERVED}"

        rooms = iter(range(100))
        results = {
            "class.serve": throughput(lambda p: start_class(root, lock_file, p, bb.free_port(),
                                                            top / f"class{next(rooms)}"), served, args.clients, args.runs),
            "bundle.serve": throughput(lambda p: bb.start_labkit(root, lock_file, p), served, args.clients, args.runs),
            "nginx": throughput(lambda p: bb.start_nginx(root, top / "nginx", p), served, args.clients, args.runs),
        }
        best = {k: max(v) for k, v in results.items()}
        print(f"bundle, {args.clients} clients: class.serve {best['class.serve'] / 1e6:,.0f} MB/s, bundle.serve "
              f"{best['bundle.serve'] / 1e6:,.0f} MB/s, nginx {best['nginx'] / 1e6:,.0f} MB/s -> class.serve / "
              f"bundle.serve {best['class.serve'] / best['bundle.serve']:.2f}x, class.serve / nginx "
              f"{best['class.serve'] / best['nginx']:.2f}x   runs: "
              + "; ".join(f"{k} " + ", ".join(f"{x / 1e6:,.0f}" for x in v) for k, v in results.items()) + " MB/s")

        port, room_port, class_dir = bb.free_port(), bb.free_port(), top / "class-load"
        proc = start_class(root, lock_file, port, room_port, class_dir)
        try:
            bb.wait_http(served(port), proc)
            bb.wait_http(f"http://127.0.0.1:{room_port}/", proc)
            secrets = json.loads((class_dir / "class.json").read_text())
            stop = threading.Event()
            started = time.monotonic()
            dl = downloads(served(port), args.clients, stop)
            out = load(f"http://127.0.0.1:{room_port}", secrets["code"], secrets["token"], args.students, args.duration)
            stop.set()
            for t in dl["threads"]:
                t.join()
            elapsed = time.monotonic() - started
            stored = sqlite3.connect(class_dir / "room.db").execute("SELECT count(*) FROM reports").fetchone()[0]
        finally:
            bb.stop(proc)
        lat = out["latencies"]
        under_load = dl["bytes"] / elapsed
        print(f"room: {args.students} students every 5 s for {args.duration:.0f} s while {args.clients} clients download: "
              f"sent {out['sent']}, accepted {out['accepted']}, stored {stored}"
              f"{' (equal)' if out['sent'] == out['accepted'] == stored else ' (NOT EQUAL)'}; report latency p50 "
              f"{pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
        page = out["page"]
        print(f"page update delay (poll every 1 s): median {statistics.median(page):.2f} s, max {max(page):.2f} s "
              f"over {len(page)} reports (goal <= 2 s)" if page else "page update delay: no report seen")
        print(f"bundle under that load: {under_load / 1e6:,.0f} MB/s (whole files) -> {under_load / best['nginx']:.2f}x "
              f"nginx alone")


if __name__ == "__main__":
    main()
