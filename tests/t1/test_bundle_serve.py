"""bundle.serve: a real server on loopback, fetched from with bundle.fetch --from (t1)."""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from tests.conftest import default_sigint, free_port, need_binary, need_root
from tests.t1.bundle_support import REPO, file_entry, invoke, sha256, start_server, write_lock
from tests.t1.bundle_support import tmpfs  # noqa: F401 (a fixture)
from labkit.bundle import fetch, lock, serve

pytestmark = pytest.mark.t1

BIG = os.urandom(2 * 1024 * 1024 + 7)
SMALL = b"weave manifest\n" * 50


@pytest.fixture
def bundle(tmp_path):
    """A complete, verified bundle (fetched for real from a loopback server) and its lock."""
    origin = start_server()
    try:
        lock_file = write_lock(tmp_path / "lock.yaml", [
            file_entry("kubernetes-node", "k8s/node.tgz", [origin.add("/node.tgz", BIG)], BIG),
            file_entry("weave-manifest", "manifests/weave.yaml", [origin.add("/weave.yaml", SMALL)], SMALL)])
        dest = tmp_path / "instructor"
        lk = lock.load(lock_file)
        assert not any(o.error for o in fetch.fetch(lk, lk.artifacts, dest, fetch.Options()))
    finally:
        origin.shutdown()
        origin.server_close()
    return lk, dest


@pytest.fixture
def server(bundle):
    lk, dest = bundle
    srv = serve.start(serve.files_of(lk.artifacts, dest), host="127.0.0.1", port=0)
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def test_students_fetch_with_from_and_get_identical_verified_files(bundle, server, tmp_path):
    lk, dest = bundle
    student = tmp_path / "student"
    url = f"http://127.0.0.1:{server.server_address[1]}"
    outcomes = fetch.fetch(lk, lk.artifacts, student, fetch.Options(from_url=url))
    assert [o.error for o in outcomes] == [None, None]
    for a in lk.artifacts:
        assert a.file(student).read_bytes() == a.file(dest).read_bytes()
    assert (student / "CHECKSUMS").read_text() == (dest / "CHECKSUMS").read_text()


def test_a_student_resumes_from_the_classroom_mirror(bundle, server, tmp_path):
    lk, _ = bundle
    student = tmp_path / "student"
    (student / "k8s").mkdir(parents=True)
    (student / "k8s/node.tgz.part").write_bytes(BIG[:1_500_000])  # an interrupted earlier fetch
    url = f"http://127.0.0.1:{server.server_address[1]}"
    outcomes = fetch.fetch(lk, lk.select("kubernetes-node"), student, fetch.Options(from_url=url))
    assert outcomes[0].error is None and (student / "k8s/node.tgz").read_bytes() == BIG
    assert server.served_bytes == len(BIG) - 1_500_000  # only the rest went over the wire


def test_ranges_head_and_nothing_outside_the_lock(bundle, server):
    _, dest = bundle
    (dest / "secret.txt").write_text("not an artifact")
    resp, body = request(server, "/k8s/node.tgz", {"Range": "bytes=10-19"})
    assert resp.status == 206 and body == BIG[10:20]
    assert resp.getheader("Content-Range") == f"bytes 10-19/{len(BIG)}"
    resp, body = request(server, "/k8s/node.tgz", {"Range": "bytes=-5"})
    assert resp.status == 206 and body == BIG[-5:]
    resp, body = request(server, "/k8s/node.tgz", {"Range": f"bytes={len(BIG) - 3}-"})
    assert resp.status == 206 and body == BIG[-3:]
    resp, _ = request(server, "/k8s/node.tgz", {"Range": f"bytes={len(BIG)}-"})
    assert resp.status == 416 and resp.getheader("Content-Range") == f"bytes */{len(BIG)}"
    resp, body = request(server, "/k8s/node.tgz", {"Range": "bytes=0-1,5-6"})
    assert resp.status == 200 and body == BIG  # multi-range: the whole file, as HTTP allows
    resp, body = request(server, "/k8s/node.tgz", method="HEAD")
    assert resp.status == 200 and body == b"" and resp.getheader("Content-Length") == str(len(BIG))
    for path in ("/secret.txt", "/k8s/../secret.txt", "/%2e%2e/%2e%2e/etc/passwd", "/k8s/node.tgz.part"):
        assert request(server, path)[0].status == 404, path
    resp, body = request(server, "/")
    assert resp.status == 200 and body.decode().split() == ["CHECKSUMS", "k8s/node.tgz", "manifests/weave.yaml"]


def test_thirty_concurrent_students(bundle, server):
    results, errors = [], []

    def student():
        try:
            resp, body = request(server, "/k8s/node.tgz")
            results.append(sha256(body))
        except Exception as exc:  # a failed student is a failed test, reported below
            errors.append(exc)

    threads = [threading.Thread(target=student) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and results == [sha256(BIG)] * 30


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


def test_cli_serve_prints_the_url_and_the_cli_fetches_from_it(bundle, tmp_path):
    lk, dest = bundle
    with cli_serve(lk.path, dest) as (port, served):
        assert any(f":{port}" in ln and "invoke bundle.fetch --from" in ln for ln in served["lines"])
        fetched = invoke("bundle.fetch", "--lock", str(lk.path), "--dest", str(tmp_path / "student"),
                         "--from", f"http://127.0.0.1:{port}")
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "student/k8s/node.tgz").read_bytes() == BIG
    assert served["code"] == 0, served["err"]
    assert "Stopped after serving" in served["out"]


def test_cli_serve_refuses_a_damaged_bundle(bundle):
    lk, dest = bundle
    (dest / "k8s/node.tgz").write_bytes(b"x" * len(BIG))
    proc = invoke("bundle.serve", "--lock", str(lk.path), "--dest", str(dest), "--port", str(free_port()))
    assert proc.returncode == 1
    assert "kubernetes-node" in proc.stdout and "corrupt" in proc.stdout  # the table names it
    assert proc.stderr.strip().splitlines()[-1].startswith("labkit: the bundle has 1 damaged or unpinned")


def test_cli_serve_with_a_missing_artifact_serves_the_rest_and_says_so(bundle, tmp_path):
    lk, dest = bundle
    (dest / "manifests/weave.yaml").unlink()
    with cli_serve(lk.path, dest) as (port, served):
        fetched = invoke("bundle.fetch", "--lock", str(lk.path), "--dest", str(tmp_path / "s"),
                         "--from", f"http://127.0.0.1:{port}")
        assert fetched.returncode == 1
        assert "weave-manifest" in fetched.stderr and "classroom mirror does not have it" in fetched.stderr
        assert (tmp_path / "s/k8s/node.tgz").read_bytes() == BIG
    assert "not serving 1 missing artifact(s): weave-manifest" in served["err"]


def test_cli_serve_port_in_use(bundle):
    lk, dest = bundle
    busy = serve.start({}, host="127.0.0.1", port=0)
    try:
        proc = invoke("bundle.serve", "--lock", str(lk.path), "--dest", str(dest), "--host", "127.0.0.1",
                      "--port", str(busy.server_address[1]))
        assert proc.returncode == 1 and "is already in use" in proc.stderr and "--port" in proc.stderr
    finally:
        busy.shutdown()
        busy.server_close()


def test_cli_verify_table_and_exit_code(bundle):
    lk, dest = bundle
    ok = invoke("bundle.verify", "--lock", str(lk.path), "--dest", str(dest))
    assert ok.returncode == 0 and "all 2 intact" in ok.stdout
    (dest / "manifests/weave.yaml").unlink()
    with open(dest / "k8s/node.tgz", "r+b") as fh:  # one flipped byte, same size
        fh.seek(1000)
        fh.write(bytes([BIG[1000] ^ 1]))
    bad = invoke("bundle.verify", "--lock", str(lk.path), "--dest", str(dest))
    assert bad.returncode == 1
    assert "corrupt (sha256 mismatch)" in bad.stdout and "missing" in bad.stdout
    assert "invoke bundle.fetch --only kubernetes-node" in bad.stdout
    assert bad.stderr.strip().startswith("labkit: 2 of 2 artifacts are corrupt or missing")


def test_cli_status(bundle):
    lk, dest = bundle
    proc = invoke("bundle.status", "--lock", str(lk.path), "--dest", str(dest))
    assert proc.returncode == 0
    assert "2 of 2 artifacts present" in proc.stdout and "2.1 MB on disk" in proc.stdout
    assert "last fetch/verify" in proc.stdout and "s ago" in proc.stdout


def test_cli_serve_rejects_a_port_outside_1_to_65535(bundle):
    lk, dest = bundle
    # 0 is refused by the number check every task shares (labkit/tasks/_common.py), 70000 by serve itself
    for port, line in (("70000", "labkit: --port 70000 is not a TCP port. Fix: pass one from 1 to 65535, like "
                                 "--port 8787"),
                       ("0", "labkit: --port 0 is not allowed. Fix: give 1 or more (the task's --help says what "
                             "it means)")):
        proc = invoke("bundle.serve", "--lock", lk.path, "--dest", dest, "--host", "127.0.0.1", "--port", port)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip() == line


def test_cli_verify_and_serve_a_read_only_bundle(bundle, tmpfs):
    """A USB stick mounted read-only: verify reports and warns, serve serves."""
    lk, dest = bundle
    stick = tmpfs("8m")
    shutil.copytree(dest, stick, dirs_exist_ok=True)
    subprocess.run(["mount", "-o", "remount,ro", str(stick)], check=True)
    ok = invoke("bundle.verify", "--lock", lk.path, "--dest", stick)
    assert ok.returncode == 0 and "all 2 intact" in ok.stdout, ok.stdout + ok.stderr
    assert "CHECKSUMS not rewritten (Read-only file system" in ok.stderr and "matches the lock" in ok.stderr
    with cli_serve(lk.path, stick) as (port, served):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/k8s/node.tgz")
        assert conn.getresponse().read() == BIG
        conn.close()
    assert served["code"] == 0 and "CHECKSUMS not rewritten" in served["err"], served["err"]


def test_cli_verify_an_unreadable_artifact_is_a_row_in_the_table(bundle):
    """Root reads everything, so the command runs without CAP_DAC_OVERRIDE: mode 000 then really denies."""
    lk, dest = bundle
    need_root()  # dropping a capability needs it
    setpriv = need_binary("setpriv")
    (dest / "k8s/node.tgz").chmod(0)
    proc = invoke("bundle.verify", "--lock", lk.path, "--dest", dest,
                  wrap=(setpriv, "--bounding-set=-dac_override,-dac_read_search"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "unreadable (Permission denied)" in proc.stdout and "make k8s/node.tgz readable" in proc.stdout
    assert proc.stderr.strip() == ("labkit: 1 of 2 artifacts are unreadable. "
                                   "Fix: run the fix shown for each artifact in the table above")
