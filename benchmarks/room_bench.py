#!/usr/bin/env python3
"""The instructor's room under a classroom's load, and its bundle throughput (README and docs/room.md quote it).

Two cases, each: 30 curl clients downloading the bundle's big file again and again from `class.serve`,
60 students each sending a doctor report every 5 s with labkit's own client (class.join, then the
queue: enqueue + flush, exactly what `invoke doctor` does, resends included), and the instructor's page
polling /api/room every second. Each student connects from a loopback address of its own (127.0.1.N),
as laptops on a LAN do (the room limits per address).

- classroom (the goal): the 30 downloads share what a real network gives: each curl is limited to
  1/30 of --cap-mbit (default 1000 Mbit/s, so about 125 MB/s in all). Goals: report p99 <= 200 ms,
  every report a student sent stored exactly once, the bundle >= 0.9x nginx's rate under the same cap.
- starvation: the 30 downloads run at full loopback speed on the same cores as the server (CPU
  starvation, far beyond a classroom): kept as the second figure.

The report latency is what a student's command waits for: one `flush` of the queue (usually one
report), measured around the real client call. "Resends" counts the client's real POSTs beyond one per
report (a report whose answer came too late stays queued and goes again; the room stores it once).
After the load (downloads finished), each student's next command flushes what is still queued; then
every seat's stored reports are counted against what that student sent.

    .venv/bin/python benchmarks/room_bench.py [--scale 0.5] [--duration 120] [--students 60] [--clients 30]
        [--cap-mbit 1000] [--case classroom|starvation|both]

Needs curl and nginx (apt-get install curl nginx-light), and a Linux loopback that answers all of 127/8.
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

from labkit.room import client  # noqa: E402

DOCTOR = [{"name": "memory", "status": "fail", "detail": "3.1 GiB available", "fix": "close other programs"},
          {"name": "vagrant", "status": "ok", "detail": "Vagrant 2.3.4", "fix": ""}]
SIZE = {}
LOCAL = threading.local()  # per simulated laptop: its source address and its POST count


def laptops_on_loopback() -> None:
    """Every HTTP connection made by a thread with LOCAL.source comes from that address; POSTs counted."""
    import urllib3.connection

    init = urllib3.connection.HTTPConnection.__init__

    def with_source(self, *args, **kwargs):
        if getattr(LOCAL, "source", None):
            kwargs["source_address"] = (LOCAL.source, 0)
        init(self, *args, **kwargs)

    post = requests.Session.post

    def counted(self, url, *args, **kwargs):
        if url.endswith("/api/reports"):
            LOCAL.posts = getattr(LOCAL, "posts", 0) + 1
        return post(self, url, *args, **kwargs)

    urllib3.connection.HTTPConnection.__init__ = with_source
    requests.Session.post = counted


def start_class(root: Path, lock_file: Path, port: int, room_port: int, class_dir: Path) -> subprocess.Popen:
    invoke = Path(sys.executable).with_name("invoke")
    return subprocess.Popen([str(invoke), "class.serve", "--lock", str(lock_file), "--dest", str(root), "--host",
                             "127.0.0.1", "--port", str(port), "--room-port", str(room_port), "--dir", str(class_dir)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def curl(url: str, rate: int) -> list[str]:
    return ["curl", "-sS", "-o", "/dev/null", "--fail", *(["--limit-rate", str(rate)] if rate else []), url]


def clients(url: str, n: int, rate: int) -> float:
    """n curl processes at once (each limited to `rate` bytes/s, 0: no limit); wall time until the last ends."""
    t = time.perf_counter()
    procs = [subprocess.Popen(curl(url, rate)) for _ in range(n)]
    codes = [p.wait() for p in procs]
    assert codes == [0] * n, codes
    return time.perf_counter() - t


def throughput(start, url_of, n: int, runs: int, rate: int) -> list[float]:
    port = bb.free_port()
    proc = start(port)
    try:
        url = url_of(port)
        bb.wait_http(url, proc)
        return [n * SIZE["served"] / clients(url, n, rate) for _ in range(runs)]
    finally:
        bb.stop(proc)


def downloads(url: str, n: int, rate: int, stop: threading.Event) -> dict:
    """n curl loops until stop (each ends the file it is on): bytes downloaded, whole files only."""
    done = {"bytes": 0}
    lock = threading.Lock()

    def loop():
        while not stop.is_set():
            if subprocess.run(curl(url, rate)).returncode == 0:
                with lock:
                    done["bytes"] += SIZE["served"]

    done["threads"] = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in done["threads"]:
        t.start()
    return done


def load(room: str, code: str, token: str, students: int, duration: float, work: Path, period: float = 5.0) -> dict:
    """Students with labkit's client, and the page's poller; what each sent, posted and waited."""
    waits, polls, per_student = [], [], {}
    lock = threading.Lock()
    joined_all = threading.Barrier(students + 1)
    end = [0.0]

    def student(n: int):
        LOCAL.source, LOCAL.posts = f"127.0.1.{n + 1}", 0
        root = work / f"laptop{n}"
        joined = client.join(root, room, code, f"student {n}")
        joined_all.wait()
        time.sleep(period * n / students)  # spread over the period, as a room would be
        enqueued = 0
        while time.monotonic() < end[0]:
            started = time.monotonic()
            client.enqueue(root, joined, "doctor", DOCTOR)
            enqueued += 1
            t = time.perf_counter()
            client.flush(root, joined)
            took = time.perf_counter() - t
            with lock:
                waits.append(took)
            time.sleep(max(0.0, period - (time.monotonic() - started)))
        with lock:
            per_student[joined["seat"]] = {"n": n, "root": root, "joined": joined, "enqueued": enqueued,
                                           "posts": LOCAL.posts, "left_at_end": len(list(
                                               (root / ".labkit" / client.QUEUE).glob("*.json")))}

    def page():  # what the page does: GET /api/room every second
        with requests.Session() as s:
            while time.monotonic() < end[0] + 2:
                t = time.perf_counter()
                try:
                    ok = s.get(room + "/api/room", headers={"Authorization": f"Bearer {token}"}, timeout=10).ok
                except requests.RequestException:
                    ok = False
                with lock:
                    polls.append(time.perf_counter() - t if ok else float("inf"))
                time.sleep(1.0)

    threads = [threading.Thread(target=student, args=(n,)) for n in range(students)]
    for t in threads:
        t.start()
    joined_all.wait()  # every laptop joined: the load starts now
    end[0] = time.monotonic() + duration
    poller = threading.Thread(target=page)
    poller.start()
    for t in threads + [poller]:
        t.join()
    return {"waits": sorted(waits), "polls": sorted(polls), "students": per_student}


def next_command(per_student: dict) -> None:
    """Each student's next command after the load (its queue is flushed): what was still queued goes."""
    def one(s):
        LOCAL.source, LOCAL.posts = f"127.0.1.{s['n'] + 1}", 0
        s["left"] = client.flush(s["root"], s["joined"]).left
        s["posts"] += LOCAL.posts

    threads = [threading.Thread(target=one, args=(s,)) for s in per_student.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def run_case(name: str, root: Path, lock_file: Path, top: Path, args, rate: int, nginx: float) -> None:
    port, room_port, class_dir = bb.free_port(), bb.free_port(), top / f"class-{name}"
    served = f"http://127.0.0.1:{port}/{bb.SERVED}"
    proc = start_class(root, lock_file, port, room_port, class_dir)
    try:
        bb.wait_http(served, proc)
        bb.wait_http(f"http://127.0.0.1:{room_port}/", proc)
        secrets = json.loads((class_dir / "class.json").read_text())
        stop = threading.Event()
        started = time.monotonic()
        dl = downloads(served, args.clients, rate, stop)
        out = load(f"http://127.0.0.1:{room_port}", secrets["code"], secrets["token"], args.students, args.duration,
                   top / f"laptops-{name}")
        stop.set()
        for t in dl["threads"]:
            t.join()
        elapsed = time.monotonic() - started
        next_command(out["students"])
        db = sqlite3.connect(class_dir / "room.db")
        stored = dict(db.execute("SELECT seat, count(*) FROM reports GROUP BY seat").fetchall())
        db.close()
    finally:
        bb.stop(proc)
    per = out["students"]
    sent = sum(s["enqueued"] for s in per.values())
    posts = sum(s["posts"] for s in per.values())
    left = sum(s["left"] for s in per.values())
    queued_at_end = sum(s["left_at_end"] for s in per.values())
    once = all(stored.get(seat, 0) == s["enqueued"] for seat, s in per.items()) and left == 0
    waits, polls = out["waits"], out["polls"]
    under_load = dl["bytes"] / elapsed
    print(f"{name}: {args.students} students every 5 s for {args.duration:.0f} s, {args.clients} downloads "
          + (f"capped at {rate * args.clients * 8 / 1e6:,.0f} Mbit/s in all" if rate else "at full loopback speed"))
    print(f"  reports sent {sent}, POSTs {posts} ({posts - sent} resends), still queued when the load ended "
          f"{queued_at_end}, stored after each student's next command {sum(stored.values())}, left queued {left}: "
          f"{'each stored exactly once' if once else 'NOT each stored exactly once'}")
    print(f"  report wait (one flush of the queue) p50 {pct(waits, 50) * 1000:.0f} ms, p99 {pct(waits, 99) * 1000:.0f} ms,"
          f" max {waits[-1] * 1000:.0f} ms (goal p99 <= 200 ms); page poll p50 {pct(polls, 50) * 1000:.0f} ms,"
          f" p99 {pct(polls, 99) * 1000:.0f} ms")
    print(f"  bundle under that load: {under_load / 1e6:,.1f} MB/s -> {under_load / nginx:.2f}x nginx alone "
          f"under the same {'cap' if rate else 'conditions'} ({nginx / 1e6:,.1f} MB/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.5, help="multiply every file size (default 0.5: ~0.35 GB)")
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--students", type=int, default=60)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--cap-mbit", type=float, default=1000.0, help="the classroom network for all downloads")
    ap.add_argument("--case", choices=["classroom", "starvation", "both"], default="both")
    args = ap.parse_args()
    for tool in ("curl", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"room_bench: needs {tool} (apt-get install curl nginx-light)")
    if args.students > 250:
        sys.exit("room_bench: at most 250 students (one 127.0.1.N address each)")
    laptops_on_loopback()
    rate = int(args.cap_mbit * 1e6 / 8 / args.clients)
    cases = [c for c in ("classroom", "starvation") if args.case in (c, "both")]
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
        nginx = {}
        for case in cases:
            limit = rate if case == "classroom" else 0
            results = {
                "class.serve": throughput(lambda p: start_class(root, lock_file, p, bb.free_port(),
                                                                top / f"class{next(rooms)}"), served, args.clients,
                                          args.runs, limit),
                "nginx": throughput(lambda p: bb.start_nginx(root, top / "nginx", p), served, args.clients, args.runs,
                                    limit),
            }
            if case == "starvation":
                results["bundle.serve"] = throughput(lambda p: bb.start_labkit(root, lock_file, p), served,
                                                     args.clients, args.runs, 0)
            best = {k: max(v) for k, v in results.items()}
            nginx[case] = best["nginx"]
            print(f"bundle alone, {case}: " + ", ".join(f"{k} {v / 1e6:,.1f} MB/s" for k, v in best.items())
                  + f" -> class.serve / nginx {best['class.serve'] / best['nginx']:.2f}x   runs: "
                  + "; ".join(f"{k} " + ", ".join(f"{x / 1e6:,.1f}" for x in v) for k, v in results.items()))
        for case in cases:
            run_case(case, root, lock_file, top, args, rate if case == "classroom" else 0, nginx[case])


if __name__ == "__main__":
    main()
