"""Test plumbing for the bundle: a real HTTP server on loopback with faults you can inject, and a
way to run the real `invoke bundle.*` command line.

Faults are queued per path and consumed one per request, so a test can say "the first request for
this file drops after 40 %, then serve normally":

    srv.fault("/f.bin", Fault(drop_after=1000))
    srv.fault("/f.bin", Fault(status=404), times=0)   # times=0: every request from now on
"""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest
import io
import json
import tarfile
import http.client
import signal
from contextlib import contextmanager
from tests.support.env import default_sigint, free_port
from labkit.bundle import lock, serve


REPO = Path(__file__).resolve().parents[2]


@dataclass
class Fault:
    status: Optional[int] = None        # answer with this status and no body
    drop_after: Optional[int] = None    # send this many body bytes, then close the connection
    wrong: bool = False                 # same length, different bytes
    rate: Optional[int] = None          # bytes per second (a slow server)
    stall_after: Optional[int] = None   # send this many bytes, then go silent for `stall` seconds
    stall: float = 5.0
    ignore_range: bool = False          # answer 200 with the whole file even to a Range request


@dataclass
class Seen:
    path: str
    range: Optional[str]
    method: str


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self.sticky: dict[str, Fault] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url + path

    def fault(self, path: str, fault: Fault, times: int = 1) -> None:
        with self.lock:
            if times == 0:
                self.sticky[path] = fault
            else:
                self.faults.setdefault(path, []).extend([fault] * times)

    def clear(self, path: str) -> None:
        with self.lock:
            self.faults.pop(path, None)
            self.sticky.pop(path, None)

    def next_fault(self, path: str) -> Optional[Fault]:
        with self.lock:
            queue = self.faults.get(path)
            if queue:
                return queue.pop(0)
            return self.sticky.get(path)

    def requests_for(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):  # noqa: N802
        self._answer(body=False)

    def do_GET(self):  # noqa: N802
        self._answer(body=True)

    def _answer(self, body: bool):
        srv: FaultServer = self.server
        path = self.path.split("?")[0]
        srv.seen.append(Seen(path, self.headers.get("Range"), self.command))
        data = srv.files.get(path)
        fault = srv.next_fault(path) or Fault()
        if data is None or fault.status:
            code = fault.status or 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault.wrong:
            data = hashlib.sha512(data).digest() * (len(data) // 64 + 1)
            data = data[: len(srv.files[path])]
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if wanted and not fault.ignore_range and wanted.startswith("bytes="):
            first = wanted[6:].split("-")[0]
            start = int(first) if first else 0
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        chunk = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not body:
            return
        if fault.drop_after is not None:
            self.wfile.write(chunk[: fault.drop_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault.stall_after is not None:
            self.wfile.write(chunk[: fault.stall_after])
            self.wfile.flush()
            time.sleep(fault.stall)
            self.close_connection = True
            return
        if fault.rate:
            step = max(1, fault.rate // 20)
            for i in range(0, len(chunk), step):
                self.wfile.write(chunk[i:i + step])
                self.wfile.flush()
                time.sleep(step / fault.rate)
            return
        self.wfile.write(chunk)


def start_server() -> FaultServer:
    srv = FaultServer()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_lock(path: Path, entries: list[str]) -> Path:
    """A lock file from YAML snippets, one per artifact (each a '- name: ...' block)."""
    body = "".join(textwrap.indent(textwrap.dedent(e).strip() + "\n", "  ") for e in entries)
    path.write_text("artifacts:\n" + body + f"count: {len(entries)}\n")
    return path


def file_entry(name: str, path: str, urls: list[str], data: Optional[bytes] = None, size: bool = True,
               extra: str = "") -> str:
    lines = [f"- name: {name}", "  kind: file", "  urls:"] + [f"    - {u}" for u in urls]
    if data is not None:
        lines.append(f"  sha256: {sha256(data)}")
        if size:
            lines.append(f"  size: {len(data)}")
    lines.append(f"  path: {path}")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def invoke(*args: str, timeout: float = 120, env: Optional[dict] = None, wrap: tuple = ()
           ) -> subprocess.CompletedProcess:
    """The real command line: `invoke bundle.<task> ...` in the repository (`wrap`: a command to run it under)."""
    exe = Path(sys.executable).with_name("invoke")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    full_env.update(env or {})
    return subprocess.run([*wrap, str(exe), *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def tmpfs(tmp_path):
    """make(size) -> a fresh tmpfs mount point (root only); all unmounted afterwards."""
    from tests.support.env import need_root

    need_root()
    mounted = []

    def make(size: str):
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def snapshot(path: Path) -> tuple:
    """Bytes and mtime of a file: to prove a failed fetch did not touch it."""
    return path.read_bytes(), path.stat().st_mtime_ns


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def layer(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            _add(t, name, data)
    return buf.getvalue()


def docker_save(tags: list, layers: list, arch: str = "amd64") -> tuple[bytes, str]:
    """A `docker save` tarball as Docker writes it (<id>/layer.tar, <config>.json, manifest.json,
    repositories); returns (bytes, image ID)."""
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/x"]},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]}}).encode()
    image_id = hashlib.sha256(config).hexdigest()
    buf = io.BytesIO()
    paths = [f"{hashlib.sha256(b'v1' + l).hexdigest()}/layer.tar" for l in layers]
    with tarfile.open(fileobj=buf, mode="w") as t:
        for p, l in zip(paths, layers):
            _add(t, p.replace("layer.tar", "VERSION"), b"1.0")
            _add(t, p, l)
        _add(t, f"{image_id}.json", config)
        _add(t, "manifest.json", json.dumps([{"Config": f"{image_id}.json", "RepoTags": tags,
                                              "Layers": paths}]).encode())
        _add(t, "repositories", b"{}")
    return buf.getvalue(), "sha256:" + image_id


BIG = os.urandom(2 * 1024 * 1024 + 7)


SMALL = b"weave manifest\n" * 50


@contextmanager
def cli_serve(lock_path, dest):
    """`invoke bundle.serve` on loopback until its URL line appears; Ctrl-C at the end of the block.
    Yields (port, served): served gets the printed lines, then out, err and code once it stopped."""
    port = free_port()
    proc = subprocess.Popen([str(sys.executable.rsplit("/", 1)[0] + "/invoke"), "bundle.serve", "--lock",
                             str(lock_path), "--dest", str(dest), "--port", str(port), "--host", "127.0.0.1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    served = {"lines": []}
    try:
        deadline = time.monotonic() + 30
        while not any("--from http://" in ln for ln in served["lines"]):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(served["lines"]) + proc.stderr.read()
            served["lines"].append(proc.stdout.readline())
        yield port, served
    finally:
        proc.send_signal(signal.SIGINT)
        served["out"], served["err"] = proc.communicate(timeout=20)
        served["code"] = proc.returncode
