"""T1: the room under hostile input, over real HTTP (`invoke class.serve` on loopback), issue 25.

The hostile cases are a table: what is sent, the status it gets, whether anything was stored, and that
the instructor's page (GET /api/room, the seat's history, export.json) still answers afterwards. Each
row comes from a loopback address of its own (127.0.0.N), as a laptop of its own would.
"""
from __future__ import annotations

import json
import socket
import sqlite3
import time

import pytest
import requests

from labkit.room import client, store
from tests.t1.bundle_support import invoke
from tests.t1.bundle_support import tmpfs  # noqa: F401 (a fixture)
from tests.t1.room_support import DOCTOR_FAIL, DOCTOR_OK, ClassServe, envelope, from_address, seat

pytestmark = pytest.mark.t1

NOW = time.time()


def raw(text: str) -> bytes:
    """An envelope written by hand, as a hostile client would (json.dumps would refuse or escape it)."""
    return text.replace("SEAT", seat(1)).replace("NOW", repr(NOW)).encode()


GOOD = '{"seat": "SEAT", "name": "Ana", "host": "h", "kind": "doctor", "taken": NOW, "sent": NOW, "report": []}'

# (what, body, status, stored)
HOSTILE = [
    ("sent 1e400", raw(GOOD.replace('"sent": NOW', '"sent": 1e400')), 400, 0),
    ("sent Infinity", raw(GOOD.replace('"sent": NOW', '"sent": Infinity')), 400, 0),
    ("taken -Infinity", raw(GOOD.replace('"taken": NOW', '"taken": -Infinity')), 400, 0),
    ("sent NaN", raw(GOOD.replace('"sent": NOW', '"sent": NaN')), 400, 0),
    ("taken 10**22", raw(GOOD.replace('"taken": NOW', '"taken": 10000000000000000000000')), 422, 0),
    ("queued a year", raw(GOOD.replace('"taken": NOW', f'"taken": {NOW - 365 * 86400!r}')), 422, 0),
    ("sent an hour before taken", raw(GOOD.replace('"sent": NOW', f'"sent": {NOW - 3600!r}')), 422, 0),
    ("100k nested [", b"[" * 100_000, 400, 0),
    ("depth-900 report", raw(GOOD.replace('"report": []', '"report": ' + "[" * 900 + "]" * 900)), 422, 0),
    ("lone surrogate in the name", raw(GOOD.replace('"Ana"', '"\\ud800"')), 422, 0),
    ("extra nested property", raw(GOOD.replace('"report": []', '"report": [{"name": "m", "status": "ok", '
                                                                 '"x": {"y": 1}}]')), 422, 0),
    ("invisible name", raw(GOOD.replace('"Ana"', '"\\u200b\\u202e\\u2066"')), 422, 0),
    ("not UTF-8", raw(GOOD).replace(b"Ana", b"\xff\xfe"), 400, 0),
    ("bidi override in the name", raw(GOOD.replace('"Ana"', '"\\u202eanA"')), 201, 1),
]


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    srv = ClassServe(tmp_path_factory.mktemp("hostile") / "class", "--no-bundle").start()
    yield srv
    srv.stop()


def page_answers(srv) -> None:
    assert srv.get("/api/room").status_code == 200
    assert srv.get(f"/api/history/{seat(1)}").status_code == 200
    exported = srv.get("/api/export.json")
    assert exported.status_code == 200 and b"Infinity" not in exported.content and b"NaN" not in exported.content


@pytest.mark.parametrize("n, what, body, status, stored", [(n, *row) for n, row in enumerate(HOSTILE)],
                         ids=[row[0] for row in HOSTILE])
def test_hostile_reports(room, n, what, body, status, stored):
    before = room.stored()
    answer = room.post(None, data=body, key=store.seat_key(room.token, seat(1)), source=f"127.0.1.{n + 1}")
    assert answer.status_code == status, answer.text
    assert "Traceback" not in answer.text and answer.json()["error" if status != 201 else "id"]
    assert room.stored() - before == stored
    page_answers(room)


def test_a_stored_name_is_normalised(room):
    assert room.post(envelope(seat(2), name="  Jose\u0301 \u202e\t Lima\u200b "), source="127.0.2.1").status_code == 201
    names = {s["seat"]: s["name"] for s in room.get("/api/room").json()["seats"]}
    assert names[seat(2)] == "Jos\u00e9 Lima"


def test_a_store_written_by_the_old_version_still_serves_the_page(tmp_path):
    """What the old version stored for "sent": 1e400 (at = -inf) and a body holding Infinity."""
    old = store.Room(tmp_path / "class" / "room.db")
    old.add(envelope(seat(1), report=DOCTOR_FAIL), received=time.time())
    old.close()
    db = sqlite3.connect(tmp_path / "class" / "room.db")
    db.execute("UPDATE cells SET at = ?, since = ?", (float("-inf"), float("-inf")))
    db.execute("UPDATE reports SET at = ?, body = ?", (float("-inf"), '[{"name": "m", "status": "ok", "t": -Infinity}]'))
    db.commit()
    db.close()
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        page_answers(srv)
        [s] = srv.get("/api/room").json()["seats"]
        assert s["cells"]["doctor"]["state"] == "fail" and s["cells"]["doctor"]["at"] is None
        assert srv.get(f"/api/history/{seat(1)}").json()[0]["at"] is None
        assert srv.get("/api/export.csv").status_code == 200
    finally:
        srv.stop()


# --- seats: issued by the server, each with its key ----------------------------------------------------

@pytest.fixture
def fresh(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    yield srv
    srv.stop()


def test_a_seat_is_issued_at_join_and_its_key_is_needed_to_post(fresh):
    ana = fresh.join("Ana", source="127.0.3.1").json()
    bo = fresh.join("Bo", source="127.0.3.2").json()
    assert ana["seat"] != bo["seat"] and len(ana["key"]) == 32
    assert fresh.post(envelope(ana["seat"], report=DOCTOR_FAIL), key=ana["key"], source="127.0.3.1").status_code == 201
    # Bo knows Ana's seat id (it travels in clear) but not her key: he cannot rewrite her row
    forged = [fresh.post(envelope(ana["seat"], name="Ana", report=DOCTOR_OK), key=k, source="127.0.3.2")
              for k in (bo["key"], "", "0" * 32)]
    assert [f.status_code for f in forged] == [403, 403, 403]
    assert "join the room again" in forged[0].json()["error"]
    [s] = fresh.get("/api/room").json()["seats"]
    assert s["cells"]["doctor"]["state"] == "fail" and fresh.stored() == 1
    # a re-join with the seat and key keeps the seat; a made-up key gets a new seat
    again = fresh.join("Ana Lima", source="127.0.3.1", seat=ana["seat"], key=ana["key"]).json()
    assert again["seat"] == ana["seat"] and again["key"] == ana["key"] and again["name"] == "Ana Lima"
    assert fresh.join("Eve", source="127.0.3.3", seat=ana["seat"], key=bo["key"]).json()["seat"] != ana["seat"]


def test_an_address_may_make_few_seats_and_few_posts(fresh):
    made = [fresh.join("Ana", source="127.0.4.1").status_code for _ in range(6)]
    assert made == [200, 200, 200, 429, 429, 429]  # 200 new "Ana" seats from one laptop: 3
    assert fresh.join("Bo", source="127.0.4.2").status_code == 200  # another laptop is not held up
    started, junk = time.monotonic(), []
    while 429 not in junk and len(junk) < 100:  # invalid posts count too: a burst of 30, then 2 a second
        junk.append(fresh.post(None, data=b"{not json", source="127.0.4.3").status_code)
    refilled = 2 * (time.monotonic() - started)
    assert junk[-1] == 429 and set(junk[:-1]) == {400} and 30 <= len(junk) - 1 <= 30 + refilled + 1, junk
    assert fresh.stored() == 0
    assert fresh.post(envelope(seat(5)), source="127.0.4.4").status_code == 201


def test_an_address_refused_ten_times_is_held_off(fresh):
    codes = [fresh.post(envelope(seat(1)), code="WRONG1", source="127.0.5.1").status_code for _ in range(12)]
    assert codes[:10] == [403] * 10 and codes[10:] == [429, 429]
    held = fresh.post(envelope(seat(1)), source="127.0.5.1")  # even with the right code, for a while
    assert held.status_code == 429 and int(held.headers["retry-after"]) >= 1
    assert fresh.post(envelope(seat(1)), source="127.0.5.2").status_code == 201
    tokens = [requests.get(fresh.url + "/api/room", headers={"Authorization": "Bearer guess"}, timeout=5).status_code
              for _ in range(11)]
    assert tokens[-1] == 429  # guessing the instructor's token is held off the same way


def test_the_token_is_never_taken_from_the_request_line(fresh):
    assert requests.get(f"{fresh.url}/api/export.csv?token={fresh.token}", timeout=5).status_code == 403
    assert fresh.get("/api/export.csv").status_code == 200


def test_new_code_keeps_seats_and_the_student_is_told_to_join_again(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    laptop = tmp_path / "laptop"
    joined = client.join(laptop, srv.url, srv.code, "Ana")
    old_code, token = srv.code, srv.token
    srv.stop()
    srv.extra = ("--no-bundle", "--new-code")
    srv.start()
    try:
        assert srv.code != old_code and srv.token == token
        assert srv.lines[0] == ("The room: a new class code (the instructor token and the students' seats "
                                "stay).\n")
        client.enqueue(laptop, joined, "doctor", DOCTOR_FAIL)
        done = client.flush(laptop, client.record(laptop))
        assert done == (0, 1, [], "403 wrong class code")  # kept, not deleted
        told = client.line(client.record(laptop), done)
        assert "Join again with the code on the projector: invoke class.join" in told
        rejoined = client.join(laptop, srv.url, srv.code, "Ana")
        assert rejoined["seat"] == joined["seat"]  # the same seat: its history stays
        assert client.flush(laptop, client.record(laptop)) == (1, 0, [], "")
    finally:
        srv.stop()


def test_a_damaged_class_file_stops_class_serve_with_the_fix(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    srv.stop()
    (tmp_path / "class" / "class.json").write_text("{half")
    ran = invoke("class.serve", "--no-bundle", "--dir", tmp_path / "class", "--host", "127.0.0.1", "--room-port",
                 str(srv.room_port))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert ran.stderr.strip().endswith("Fix: restore it from a backup, or pass --new-code (every student then joins "
                                       "again)")
    assert (tmp_path / "class" / "class.json").read_text() == "{half"


def test_a_full_room_refuses_one_more_seat(fresh):
    """MAX_SEATS seats (keys made with the token, as the server would at join), from 30 laptops."""
    with_keys = [fresh.post(envelope(seat(n)), source=f"127.0.6.{n % 30 + 1}").status_code
                 for n in range(store.MAX_SEATS)]
    assert set(with_keys) == {201}
    full = fresh.post(envelope(seat(store.MAX_SEATS)), source="127.0.6.99")
    assert full.status_code == 409 and "full" in full.json()["error"]
    assert fresh.join("Late", source="127.0.6.100").status_code == 409
    assert fresh.post(envelope(seat(0), report=DOCTOR_FAIL), source="127.0.6.101").status_code == 201  # seats in it go on


# --- the server itself: slow clients, many connections, a full disk ----------------------------------

def test_a_slow_loris_client_gets_408_and_others_are_served(fresh):
    from labkit.room import server

    slow = socket.create_connection(("127.0.0.1", fresh.room_port))
    started = time.monotonic()
    got = b""
    slow.settimeout(0.3)
    for byte in b"POST /api/reports HTTP/1.1\r\nHost: room\r\nX-Class-Code: " * 10:
        try:
            slow.send(bytes([byte]))
            chunk = slow.recv(4096)
            if not chunk:
                break
            got += chunk
        except socket.timeout:
            assert fresh.get("/api/room").status_code == 200  # meanwhile the page is answered
        except (BrokenPipeError, ConnectionResetError):
            break
        if time.monotonic() - started > server.HEADER_TIMEOUT + 3:
            break
    slow.close()
    waited = time.monotonic() - started
    assert got.startswith(b"HTTP/1.1 408 ") and server.HEADER_TIMEOUT <= waited < server.HEADER_TIMEOUT + 2, (got, waited)
    print(f"slow loris: 408 after {waited:.1f} s")


def test_silent_connections_beyond_the_limit_get_503_until_they_time_out(fresh):
    from labkit.room import server

    idle = [socket.create_connection(("127.0.0.1", fresh.room_port)) for _ in range(server.MAX_CONNECTIONS + 20)]
    opened = time.monotonic()
    try:
        time.sleep(0.5)
        crowded = fresh.post(envelope(seat(1)), source="127.0.7.1")
        assert crowded.status_code == 503  # no connection left: refused at once, not hung
        while time.monotonic() - opened < server.HEADER_TIMEOUT + 1.5:
            time.sleep(0.2)
        assert fresh.post(envelope(seat(1)), source="127.0.7.2").status_code == 201  # they were closed
        idle[0].settimeout(1)
        assert idle[0].recv(100).startswith(b"HTTP/1.1 408 ")
    finally:
        for s in idle:
            s.close()


def test_a_full_disk_refuses_with_507_and_one_console_line(tmp_path, tmpfs):
    point = tmpfs("2m")
    srv = ClassServe(point / "class", "--no-bundle").start()
    try:
        assert srv.post(envelope(seat(1)), source="127.0.8.1").status_code == 201
        filler = point / "filler"
        with open(filler, "wb") as fh:  # the disk full, as a download that filled it would leave it
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        report = [{"name": f"c{i}", "status": "ok", "detail": "x" * 3000} for i in range(20)]
        codes = [srv.post(envelope(seat(n % 4 + 1), report=report), source=f"127.0.8.{n + 2}").status_code
                 for n in range(8)]
        assert 507 in codes and set(codes) <= {201, 507}, codes
        page_answers(srv)  # the page still reads what is stored
        stored_then = srv.stored()
        filler.unlink()
        assert srv.post(envelope(seat(1), report=DOCTOR_FAIL), source="127.0.8.30").status_code == 201
        assert srv.stored() == stored_then + 1
    finally:
        code, out, err = srv.stop()
    full = [ln for ln in out.splitlines() if "is full" in ln]
    assert len(full) == 1 and "reports are refused and stay queued on the laptops" in full[0], out
    assert "class.serve: reports are stored again" in out
    assert "cannot rollback" not in out + err and "Traceback" not in out + err, err


def test_the_queue_names_a_429_and_keeps_what_is_left(fresh, tmp_path):
    laptop = tmp_path / "laptop"
    joined = client.join(laptop, fresh.url, fresh.code, "Ana")
    assert (laptop / ".labkit" / "class.json").stat().st_mode & 0o777 == 0o600
    assert json.loads((laptop / ".labkit" / "class.json").read_text())["key"] == joined["key"]
    for _ in range(15):  # a queue that grew while the room was down
        client.enqueue(laptop, joined, "doctor", DOCTOR_OK)
    done = client.flush(laptop, joined)
    assert done.sent == 10 and done.left == 5 and done.stopped.startswith("429 too many reports from this seat")
    assert client.line(joined, done).startswith("class: the room is busy (429 too many reports); 5 report(s) queued")
    time.sleep(5.2)
    assert client.flush(laptop, joined) == (5, 0, [], "")
    assert fresh.stored() == 15


def test_class_send_after_a_code_change_keeps_the_queue_and_says_join_again(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        joined = client.join(project, srv.url, srv.code, "Ana")
        client.enqueue(project, dict(joined, code="ZZZZZZ"), "doctor", DOCTOR_OK)
        record = json.loads((project / ".labkit" / "class.json").read_text())
        (project / ".labkit" / "class.json").write_text(json.dumps(dict(record, code="ZZZZZZ")))
        ran = invoke("class.send", env={"INVOKE_LABKIT_ROOT": str(project)})
        assert ran.returncode == 1 and "Traceback" not in ran.stderr
        assert f"answered 403 wrong class code; 1 report(s) queued. Join again with the code on the projector: " \
               f'invoke class.join {srv.url} --code CODE --name "Ana"' in ran.stdout
        assert len(list((project / ".labkit" / client.QUEUE).glob("*.json"))) == 1
    finally:
        srv.stop()


def test_a_lost_class_file_is_said_on_the_console(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    assert srv.post(envelope(seat(1))).status_code == 201
    old_code = srv.code
    srv.stop()
    (tmp_path / "class" / "class.json").unlink()
    srv.start()
    try:
        assert srv.code != old_code
        assert srv.lines[0] == ("The room: no class.json: a new class code and instructor token (students join "
                                "again).\n")
    finally:
        srv.stop()


def test_a_body_too_slow_gets_408_and_one_cut_short_leaves_no_traceback(tmp_path):
    from labkit.room import app

    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        head = (f"POST /api/reports HTTP/1.1\r\nHost: room\r\nX-Class-Code: {srv.code}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()
        cut = socket.create_connection(("127.0.0.1", srv.room_port))
        cut.sendall(head + b'{"seat": ')
        cut.close()  # gone mid-body
        slow = socket.create_connection(("127.0.0.1", srv.room_port))
        slow.sendall(head)
        started, got = time.monotonic(), b""
        slow.settimeout(1)
        while not got and time.monotonic() - started < app.BODY_TIMEOUT + 5:
            try:
                slow.sendall(b" ")
                got = slow.recv(4096)
            except socket.timeout:
                pass
        waited = time.monotonic() - started
        slow.close()
        assert got.startswith(b"HTTP/1.1 408 ") and app.BODY_TIMEOUT <= waited < app.BODY_TIMEOUT + 2, (got, waited)
        assert srv.stored() == 0 and srv.get("/api/room").status_code == 200
    finally:
        code, out, err = srv.stop()
    assert code == 0 and "Traceback" not in out + err and "Exception" not in err, err
