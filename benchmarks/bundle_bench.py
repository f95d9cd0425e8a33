#!/usr/bin/env python3
"""Measure the bundle's two throughput goals and print the figures (docs/bundle.md quotes them).

1. bundle.verify hashing throughput as a ratio to `sha256sum` over the same files.
   Goal: >= 1.0x (verify hashes on every core; sha256sum is one process).
2. bundle.serve aggregate throughput to 30 concurrent loopback clients (curl) as a ratio to nginx
   (Debian nginx-light) serving the same directory. Goal: >= 0.5x.

The data set imitates a bundle's shape (one big box, a few large images/tarballs, many small debs),
random bytes in a temp dir, read once first so both sides run from the page cache.

    .venv/bin/python benchmarks/bundle_bench.py [--scale 1.0] [--clients 30] [--runs 2]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labkit.bundle import lock as lockmod  # noqa: E402
from labkit.bundle import verify as verifymod  # noqa: E402

# MB per file: a box, the node tarball, images of several sizes, small debs and manifests
SHAPE = [300, 120, 80, 60, 40, 40, 20, 10, 5] + [1] * 10
SERVED = "k8s/node.bin"  # what every client downloads in the serve test (the 120 MB file)


def make_bundle(root: Path, scale: float, algo: str) -> Path:
    entries, seed = [], os.urandom(1 << 20)
    for i, size_mb in enumerate(SHAPE):
        path = SERVED if size_mb == 120 else f"images/f{i:02d}.bin"
        f = root / path
        f.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.new(algo)
        with open(f, "wb") as fh:
            for n in range(max(1, int(size_mb * scale))):
                block = hashlib.sha256(seed + n.to_bytes(4, "big") + i.to_bytes(4, "big")).digest() * 32768
                fh.write(block)
                h.update(block)
        entries.append(f"  - name: f{i:02d}\n    kind: file\n    urls: [https://example.org/{i}]\n"
                       f"    {algo}: {h.hexdigest()}\n    path: {path}\n")
    lock_file = root.parent / f"lock-{algo}.yaml"
    lock_file.write_text("artifacts:\n" + "".join(entries) + f"count: {len(entries)}\n")
    return lock_file


def warm(root: Path) -> int:
    total = 0
    for f in root.rglob("*.bin"):
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                total += len(chunk)
    return total


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_verify(root: Path, lock_file: Path, runs: int) -> dict:
    lk = lockmod.load(lock_file)
    files = [str(a.file(root)) for a in lk.artifacts]

    def labkit():
        bad = [f for f in verifymod.verify(lk.artifacts, root) if not f.ok]
        assert not bad, bad

    def sha256sum():
        subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)

    return {"labkit": timed(labkit, runs), "sha256sum": timed(sha256sum, runs)}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clients(url: str, n: int) -> float:
    """n curl processes at once, each downloading url to /dev/null; wall time until the last ends."""
    t = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "--fail", url]) for _ in range(n)]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - t
    assert codes == [0] * n, codes
    return elapsed


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(["curl", "-s", "-o", "/dev/null", "--fail", url]).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server at {url} did not come up")
        time.sleep(0.2)


def start_labkit(root: Path, lock_file: Path, port: int) -> subprocess.Popen:
    invoke = Path(sys.executable).with_name("invoke")
    return subprocess.Popen([str(invoke), "bundle.serve", "--lock", str(lock_file), "--dest", str(root),
                             "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_nginx(root: Path, work: Path, port: int) -> subprocess.Popen:
    work.mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(f"""
user root;
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT if proc.args[0].endswith("invoke") else signal.SIGQUIT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_serve(root: Path, lock_file: Path, n: int, runs: int) -> dict:
    size = (root / SERVED).stat().st_size
    results = {}
    for name, start in (("labkit", lambda p: start_labkit(root, lock_file, p)),
                        ("nginx", lambda p: start_nginx(root, root.parent / "nginx", p))):
        port = free_port()
        proc = start(port)
        try:
            url = f"http://127.0.0.1:{port}/{SERVED}"
            wait_http(url, proc)
            results[name] = [n * size / clients(url, n) for _ in range(runs)]
        finally:
            stop(proc)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every file size (default 1.0: ~0.7 GB)")
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    for tool in ("sha256sum", "curl", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"bundle_bench: needs {tool} (apt-get install coreutils curl nginx-light)")
    top = Path(tempfile.mkdtemp(prefix="labkit-bundle-bench-"))
    try:
        root = top / "bundle"
        print(f"machine: {os.cpu_count()} cores; data set {sum(SHAPE) * args.scale:.0f} MB in {len(SHAPE)} files")
        lock256 = make_bundle(root, args.scale, "sha256")
        total = warm(root)
        v = bench_verify(root, lock256, args.runs)
        best_l, best_s = min(v["labkit"]), min(v["sha256sum"])
        print(f"verify (sha256 pins): labkit {total / best_l / 1e6:,.0f} MB/s, sha256sum {total / best_s / 1e6:,.0f} MB/s"
              f" -> ratio {best_s / best_l:.2f}x (goal >= 1.0x)   runs: labkit "
              + ", ".join(f"{t:.2f}s" for t in v["labkit"]) + "; sha256sum " + ", ".join(f"{t:.2f}s" for t in v["sha256sum"]))
        shutil.rmtree(root)
        lock512 = make_bundle(root, args.scale, "sha512")
        warm(root)
        t512 = min(timed(lambda: verifymod.verify(lockmod.load(lock512).artifacts, root), args.runs))
        print(f"verify (sha512 pins, as kubernetes-node uses): labkit {total / t512 / 1e6:,.0f} MB/s "
              f"-> ratio to sha256sum {best_s / t512:.2f}x")
        s = bench_serve(root, lock512, args.clients, args.runs)
        lab, ngx = max(s["labkit"]), max(s["nginx"])
        print(f"serve, {args.clients} concurrent loopback clients x {(root / SERVED).stat().st_size / 1e6:.0f} MB: "
              f"labkit {lab / 1e6:,.0f} MB/s, nginx {ngx / 1e6:,.0f} MB/s -> ratio {lab / ngx:.2f}x (goal >= 0.5x)"
              f"   runs: labkit " + ", ".join(f"{x / 1e6:,.0f}" for x in s["labkit"]) + "; nginx "
              + ", ".join(f"{x / 1e6:,.0f}" for x in s["nginx"]) + " MB/s")
        print(f"median of runs: serve ratio {statistics.median(s['labkit']) / statistics.median(s['nginx']):.2f}x, "
              f"verify ratio {statistics.median(v['sha256sum']) / statistics.median(v['labkit']):.2f}x")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
