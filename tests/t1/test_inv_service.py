"""inv/app.py for real: a process on a loopback port, queried over HTTP.

Every test runs under Python 3.7 (the base image's Python, python:3.7.9-alpine3.12) and under the
Python running the tests.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.env import REPO, free_port, need

pytestmark = pytest.mark.t1

APP = REPO / "inv" / "app.py"
LOG_LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d 127\.0\.0\.1 "(\S+) (\S+)" (\d{3})$')


def python37() -> str | None:
    """A working Python 3.7 interpreter (pyenv's, on this project's machines), or None."""
    candidates = [os.environ.get("INV_TEST_PYTHON37", "")]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.7*/bin/python3.7"))
    candidates += ["python3.7"]
    for exe in filter(None, candidates):
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                 text=True, timeout=20)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 7)":
            return exe
    return None


@pytest.fixture(scope="module", params=["python3.7", "current"])
def interpreter(request) -> str:
    if request.param == "current":
        return sys.executable
    exe = python37()
    need(exe is not None, "no Python 3.7 interpreter (pyenv install 3.7) to run inv/app.py as the base image does")
    return exe


class Inv:
    def __init__(self, python: str, env: dict | None = None):
        self.port = free_port()
        full_env = {k: v for k, v in os.environ.items() if k not in ("PORT", "INV_VERSION")}
        full_env.update({"PORT": str(self.port)}, **(env or {}))
        self.proc = subprocess.Popen([python, str(APP)], env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.first_line = self.proc.stdout.readline()  # "inv 0.1 listening on ..." once it is bound

    def request(self, method="GET", path="/", headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def stop(self) -> tuple[int, float, str]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = -9
        return code, time.monotonic() - started, self.proc.stdout.read()


@pytest.fixture(scope="module")
def inv(interpreter):
    server = Inv(interpreter)
    assert "listening on 0.0.0.0:%d" % server.port in server.first_line, server.proc.stderr.read()
    yield server
    if server.proc.poll() is None:
        server.stop()


def test_root_answers_the_labs_exact_body_and_names_the_host(inv):
    status, headers, body = inv.request()
    assert status == 200
    assert body == b'{"version":"0.1"}'
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == "17"
    assert headers["X-Served-By"] == socket.gethostname()


def test_query_string_does_not_change_the_resource(inv):
    assert inv.request(path="/?from=client")[2] == b'{"version":"0.1"}'


def test_healthz(inv):
    status, headers, body = inv.request(path="/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["X-Served-By"] == socket.gethostname()


def test_head_has_headers_but_no_body(inv):
    status, headers, body = inv.request("HEAD")
    assert (status, headers["Content-Length"], body) == (200, "17", b"")


def test_unknown_path_is_a_json_404(inv):
    status, headers, body = inv.request(path="/inventory/42")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "not found", "path": "/inventory/42"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])
def test_other_methods_are_a_json_405(inv, method):
    status, headers, body = inv.request(method, body=b'{"can":"full"}' if method in ("POST", "PUT") else None)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert json.loads(body) == {"error": "method not allowed", "method": method}


def test_a_malformed_request_gets_json_not_html(inv):
    headers = b"".join(b"X-Can-%d: full\r\n" % i for i in range(120))  # http.server allows 100
    with socket.create_connection(("127.0.0.1", inv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: inv\r\n" + headers + b"\r\n")
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": "Too many headers"}


def test_a_request_refused_before_parsing_is_logged_not_a_traceback(interpreter):
    server = Inv(interpreter)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\n\r\n")  # 414: the request line is never parsed
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass  # the server closes with our bytes unread: a reset is fine
    code, _seconds, out = server.stop()
    assert code == 0
    assert "Traceback" not in server.proc.stderr.read()
    assert LOG_LINE.match(out.splitlines()[0]).groups() == ("-", "-", "414")


def test_keep_alive_serves_several_requests_on_one_connection(inv):
    conn = http.client.HTTPConnection("127.0.0.1", inv.port, timeout=10)
    try:
        bodies = []
        for _ in range(3):
            conn.request("GET", "/")
            bodies.append(conn.getresponse().read())
        assert bodies == [b'{"version":"0.1"}'] * 3
    finally:
        conn.close()


def test_200_concurrent_clients_all_get_the_answer_while_others_sit_idle(inv):
    # Idle keep-alive clients hold their threads; new clients must still be served.
    idle = [socket.create_connection(("127.0.0.1", inv.port), timeout=10) for _ in range(50)]
    barrier = threading.Barrier(200)

    def one(_):
        barrier.wait(timeout=30)  # all 200 connect at the same moment
        return inv.request()

    try:
        with ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(one, range(200)))
    finally:
        for s in idle:
            s.close()
    assert [r[0] for r in results] == [200] * 200
    assert {r[2] for r in results} == {b'{"version":"0.1"}'}


def test_version_comes_from_configuration(interpreter):
    server = Inv(interpreter, {"INV_VERSION": "0.2"})
    try:
        assert server.request()[2] == b'{"version":"0.2"}'
    finally:
        server.stop()


def test_sigterm_stops_it_within_2_seconds_even_with_clients_connected(interpreter):
    server = Inv(interpreter)
    for path in ("/", "/healthz", "/missing"):
        server.request(path=path)
    server.request("POST")
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)  # an open keep-alive client
    try:
        code, seconds, out = server.stop()
    finally:
        idle.close()
    assert code == 0
    assert seconds < 2.0, f"took {seconds:.2f}s"
    lines = [ln for ln in out.splitlines() if ln]
    # One line per request on stdout, then the goodbye.
    assert [LOG_LINE.match(ln).groups() for ln in lines[:-1]] == [
        ("GET", "/", "200"), ("GET", "/healthz", "200"), ("GET", "/missing", "404"), ("POST", "/", "405")]
    assert lines[-1] == "inv stopped"


def test_bad_port_setting_is_one_clear_line(interpreter):
    out = subprocess.run([interpreter, str(APP)], env={**os.environ, "PORT": "http"}, capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 2
    assert out.stderr.strip() == "inv: PORT must be a number from 1 to 65535, got 'http'"


def test_port_in_use_is_one_clear_line(interpreter):
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen(1)
        port = s.getsockname()[1]
        out = subprocess.run([interpreter, str(APP)], env={**os.environ, "PORT": str(port)}, capture_output=True,
                             text=True, timeout=20)
    assert out.returncode == 1
    assert out.stderr.strip().startswith(f"inv: cannot listen on 0.0.0.0:{port}: ")
    assert "Traceback" not in out.stderr
