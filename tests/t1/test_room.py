"""T1: the room over real HTTP (`invoke class.serve` on loopback): security, bad input, SIGKILL, the queue."""
from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from labkit.room import client
from tests.support.bundle import file_entry, invoke, write_lock
from labkit.room.store import seat_key
from tests.support.room import DOCTOR_FAIL, ClassServe, envelope, from_address, seat

pytestmark = pytest.mark.t1


@pytest.fixture
def room(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    yield srv
    srv.stop()


def stored(srv) -> int:
    return sqlite3.connect(srv.dir / "room.db").execute("SELECT count(*) FROM reports").fetchone()[0]


def test_a_report_with_the_code_is_stored_and_shown(room):
    answer = room.post(envelope(seat(1), report=DOCTOR_FAIL))
    assert answer.status_code == 201, answer.text
    view = room.get("/api/room").json()
    [s] = view["seats"]
    assert s["name"] == "Ana" and s["cells"]["doctor"]["state"] == "fail"
    assert s["cells"]["doctor"]["first"] == {"check": "memory", "detail": "3.1 GiB available",
                                             "hint": "close other programs"}


@pytest.mark.parametrize("code", ["", "WRONG1"])
def test_reports_without_the_class_code_are_refused_and_not_stored(room, code):
    answer = room.post(envelope(seat(1)), code=code)
    assert answer.status_code == 403 and stored(room) == 0


def test_bad_bodies_get_a_clear_status_and_nothing_is_stored(room):
    big = envelope(seat(1), report=[{"name": "x", "status": "ok", "detail": "y" * 3000}] * 100)  # ~300 KB
    assert len(json.dumps(big)) > 256 * 1024
    assert room.post(big).status_code == 413
    chunked = room.post(None, data=(json.dumps(big)[i:i + 65536].encode() for i in range(0, 400_000, 65536)))
    assert chunked.status_code == 413  # no Content-Length: counted while reading
    assert room.post(None, data=b"{not json").status_code == 400
    invalid = room.post(envelope("../../etc", name="<b>"))
    assert invalid.status_code == 422 and invalid.json()["error"].startswith("not a labkit report: seat")
    assert stored(room) == 0


def test_the_instructor_token_guards_the_room_exports_and_clear(room):
    assert room.post(envelope(seat(1))).status_code == 201
    for path in ("/api/room", "/api/export.csv", "/api/export.json", f"/api/history/{seat(1)}"):
        assert room.get(path, token="").status_code == 403
        assert room.get(path, token=room.code).status_code == 403  # the students' code is not the token
        assert room.get(path).status_code == 200
    assert requests.post(room.url + "/api/clear", timeout=5).status_code == 403
    assert room.get("/api/room").json()["seats"] != []
    assert requests.post(room.url + "/api/clear", headers={"Authorization": f"Bearer {room.token}"},
                         timeout=5).status_code == 200
    assert room.get("/api/room").json()["seats"] == [] and stored(room) == 1  # history stays


def test_exports_are_downloads_of_the_whole_room(room):
    room.post(envelope(seat(1), name="=cmd|' /C calc'!A0", report=DOCTOR_FAIL))
    csv = room.get("/api/export.csv")
    assert csv.headers["content-disposition"] == 'attachment; filename="room.csv"'
    assert csv.text.splitlines()[1].startswith("'=cmd|")
    assert json.loads(room.get("/api/export.json").content)["seats"][0]["name"] == "=cmd|' /C calc'!A0"


def test_nothing_outside_the_class_directory_is_reachable(room):
    for path in ("/../class.json", "/%2e%2e/class.json", "/class.json", "/room.db", "/api/history/..%2f..%2fetc"):
        answer = room.get(path)
        assert answer.status_code == 404, path
        assert room.token not in answer.text


def test_every_answer_forbids_inline_script(room):
    for path in ("/", "/api/room"):
        policy = room.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_a_flood_from_one_seat_is_limited_and_others_go_through(room):
    started = time.monotonic()
    codes = [room.post(envelope(seat(7))).status_code for _ in range(15)]
    refilled = time.monotonic() - started  # one a second
    assert codes[:10] == [201] * 10 and codes.count(429) >= 5 - refilled - 1 and set(codes[10:]) <= {201, 429}, codes
    assert room.post(envelope(seat(8))).status_code == 201
    time.sleep(1.1)
    assert room.post(envelope(seat(7))).status_code == 201


def test_it_listens_only_where_it_was_told(room):
    other = [a for a in client_addresses() if not a.startswith("127.")]
    if not other:
        pytest.skip("this machine has no address besides loopback")
    with pytest.raises(OSError):
        socket.create_connection((other[0], room.room_port), timeout=2).close()


def client_addresses():
    from labkit.bundle.serve import lan_addresses

    return lan_addresses()


def test_sigkill_in_a_burst_loses_no_answered_report(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    answered, stop = [], threading.Event()

    def student(n):  # twelve laptops: each from an address of its own
        with from_address(f"127.0.0.{10 + n}") as s:
            while not stop.is_set():
                try:
                    r = s.post(srv.url + "/api/reports", json=envelope(seat(n)), timeout=5,
                               headers={"X-Class-Code": srv.code, "X-Seat-Key": seat_key(srv.token, seat(n))})
                except requests.RequestException:
                    return
                if r.status_code == 201:
                    answered.append(r.json()["id"])
                elif r.status_code == 429:
                    time.sleep(0.3)

    threads = [threading.Thread(target=student, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    srv.kill()
    stop.set()
    for t in threads:
        t.join()
    assert len(answered) > 20, answered
    srv.start()
    try:
        ids = {h["id"] for n in range(12) for h in srv.get(f"/api/history/{seat(n)}").json()}
        assert set(answered) <= ids
        assert len(srv.get("/api/room").json()["seats"]) == 12
    finally:
        srv.stop()


def test_a_report_sent_while_the_room_is_down_arrives_when_it_is_back(tmp_path):
    student = tmp_path / "laptop"
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    joined = client.join(student, srv.url, srv.code.lower(), "  Ana   Lima ")
    assert joined["name"] == "Ana Lima" and joined["code"] == srv.code
    srv.kill()
    started = time.monotonic()
    client.send(student, "doctor", DOCTOR_FAIL)
    assert time.monotonic() - started < 3  # never holds the student up for long
    assert len(list((student / ".labkit" / client.QUEUE).glob("*.json"))) == 1
    srv.start()
    try:
        assert client.flush(student, joined) == (1, 0, [], "")
        [s] = srv.get("/api/room").json()["seats"]
        assert s["name"] == "Ana Lima" and s["cells"]["doctor"]["state"] == "fail"
    finally:
        srv.stop()


def test_cli_join_send_and_stop(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    assert any(f"invoke class.join {srv.url} --code {srv.code}" in ln for ln in srv.lines)
    assert srv.token not in "".join(srv.lines)  # the projector never shows the instructor's token
    assert srv.page_url().endswith(f"#token={srv.token}")
    assert (srv.dir / "page-url").stat().st_mode & 0o777 == 0o600
    assert srv.dir.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in srv.dir.iterdir()} == dict.fromkeys(
        ["class.json", "page-url", "room.db", "room.db-wal", "room.db-shm"], 0o600)
    wrong = invoke("class.join", srv.url, "--code", "ZZZZZZ", "--name", "Ana")
    assert wrong.returncode == 1 and wrong.stderr.strip() == (
        f"labkit: the room at {srv.url} refuses the code ZZZZZZ. Fix: copy the class code from the projector")
    code, out, err = srv.stop()
    assert code == 0 and "Stopped. 0 report(s) kept" in out, err
    down = invoke("class.join", srv.url, "--code", srv.code, "--name", "Ana")
    assert down.returncode == 1 and "does not answer" in down.stderr and "Traceback" not in down.stderr


def serving_instructor_bundle(tmp_path, data: bytes):
    """class.serve over an instructor's bundle of one file, fetched for real from a local HTTP origin:
    (lock file, bundle port, the running class.serve)."""
    from tests.support.bundle import start_server
    from tests.support.env import free_port

    origin = start_server()
    try:
        lock_file = write_lock(tmp_path / "lock.yaml", [
            file_entry("kubernetes-node", "k8s/node.tgz", [origin.add("/node.tgz", data)], data)])
        assert invoke("bundle.fetch", "--lock", lock_file, "--dest", tmp_path / "instructor").returncode == 0
    finally:
        origin.shutdown()
        origin.server_close()
    port = free_port()
    srv = ClassServe(tmp_path / "class", "--lock", str(lock_file), "--dest", str(tmp_path / "instructor"),
                     "--port", str(port)).start()
    return lock_file, port, srv


def test_class_serve_serves_the_verified_bundle_like_bundle_serve(tmp_path):
    data = b"node tarball " * 40000
    lock_file, port, srv = serving_instructor_bundle(tmp_path, data)
    try:
        assert any(f"invoke bundle.fetch --from http://127.0.0.1:{port}" in ln for ln in srv.lines)
        part = requests.get(f"http://127.0.0.1:{port}/k8s/node.tgz", headers={"Range": "bytes=100-199"}, timeout=5)
        assert part.status_code == 206 and part.content == data[100:200]
        fetched = invoke("bundle.fetch", "--lock", lock_file, "--dest", tmp_path / "student", "--from",
                         f"http://127.0.0.1:{port}")
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "student/k8s/node.tgz").read_bytes() == data
        hello = requests.get(srv.url + "/api/hello", headers={"X-Class-Code": srv.code}, timeout=5).json()
        assert hello["bundle"] == f"http://127.0.0.1:{port}"
    finally:
        code, out, err = srv.stop()
    assert code == 0 and "MB of bundle served" in out, err


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_the_bundle_has_a_process_of_its_own_and_dies_with_class_serve(tmp_path):
    """Downloads never take the room's GIL (Linux: a forked child); a SIGKILL of class.serve leaves no bundle serving."""
    data = b"node tarball " * 1000
    _lock, port, srv = serving_instructor_bundle(tmp_path, data)
    children = [int(p) for p in Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read_text().split()]
    assert len(children) == 1  # the bundle's process
    assert requests.get(f"http://127.0.0.1:{port}/k8s/node.tgz", timeout=5).content == data
    srv.kill()
    deadline = time.monotonic() + 5
    while alive(children[0]):
        assert time.monotonic() < deadline, "the bundle's process outlived class.serve"
        time.sleep(0.1)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/k8s/node.tgz", timeout=5)


def test_invoke_doctor_on_a_joined_laptop_sends_its_report(tmp_path):
    """The real `invoke doctor --json` in a project of its own (INVOKE_LABKIT_ROOT): stdout stays pure JSON."""
    from tests.support.env import REPO

    project = tmp_path / "project"
    project.mkdir()
    (project / "settings.yaml").write_bytes((REPO / "settings.yaml").read_bytes())
    (project / "provision").symlink_to(REPO / "provision")
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        client.join(project, srv.url, srv.code, "Ana")
        ran = invoke("doctor", "--json", env={"INVOKE_LABKIT_ROOT": str(project)})
        report = json.loads(ran.stdout)  # doctor --json: {"schema": "labkit-checks/1", "kind": "doctor", ..., "checks"}
        printed = report["checks"]
        assert ran.stderr.strip().splitlines()[-1] == "class: report sent to the room as Ana"
        [s] = srv.get("/api/room").json()["seats"]
        [sent] = srv.get(f"/api/history/{s['seat']}").json()
        assert sent["kind"] == "doctor" and sent["report"] == report
        worst = "fail" if any(r["status"] == "fail" for r in printed) else "warn" if any(
            r["status"] == "warn" for r in printed) else "pass"
        assert s["cells"]["doctor"]["state"] == worst
    finally:
        srv.stop()
