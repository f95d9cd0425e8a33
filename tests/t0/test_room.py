"""The room's logic: report schema, cells per column, the SQLite store, CSV, the flood limit, the student's queue."""
import datetime
import json
import sqlite3
from pathlib import Path

import pytest

from labkit import doctor as doctormod
from labkit import settings as settings_mod
from labkit.room import app as appmod
from labkit.room import client, schema, store
from labkit.verify import report
from labkit.verify.hints import make
from labkit.checks import Checked, skipped
from labkit.verify.model import LabCheck, Lab, failed, passed

SEAT = "0123456789abcdef"


def doctor_report(*statuses):
    """What tasks/doctor.py sends: its LabCheck dataclasses as dicts."""
    return [doctormod.Check(f"check{i}", s, f"detail {i}", f"fix {i}" if s != "ok" else "").__dict__
            for i, s in enumerate(statuses)]


def result(cid, section, outcome):
    check = LabCheck(cid, f"title {cid}", lambda t: outcome, section=section, source="ubuntu", target="10.32.0.4:80")
    return Checked(check, outcome, 0.1)


@pytest.fixture(scope="module")
def lab(repo):
    return Lab.from_settings(settings_mod.load(repo, {}))


def verify_report(lab, results, sections=None):
    """What tasks/verify.py sends: report.as_json, the same as `verify --json` writes."""
    started = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    return json.loads(json.dumps(report.as_json(results, lab, 3.0, started, sections)))


def envelope(kind, rep, seat=SEAT, name="Ana", taken=100.0, sent=100.0):
    return {"seat": seat, "name": name, "host": "laptop-7", "kind": kind, "taken": taken, "sent": sent, "report": rep}


ROUTE = failed("no route for 10.32.0.0/12", make("route-missing", cidr="10.32.0.0/12", node="ubuntu"))


def test_real_doctor_and_verify_reports_are_valid(lab):
    assert schema.problem(envelope("doctor", doctor_report("ok", "warn", "fail"))) is None
    rep = verify_report(lab, [result("api", 3, passed("v1.15.12")), result("net.route", 5, ROUTE)])
    assert schema.problem(envelope("verify", rep)) is None
    assert schema.problem(envelope("verify", verify_report(lab, [result("api", 3, passed())], ["3-4"]))) is None  # --section


@pytest.mark.parametrize("change, where", [
    ({"seat": "../../etc/passwd"}, "seat"),
    ({"name": ""}, "name"),
    ({"name": "x" * 61}, "name"),
    ({"kind": "shell"}, "kind"),
    ({"extra": 1}, "the report"),
    ({"report": [{"name": "ram", "status": "broken"}]}, "report/0/status"),
    ({"report": {"schema": "labkit-verify/1", "checks": []}}, "report"),  # a verify report posted as doctor
])
def test_bad_envelopes_are_named(change, where):
    env = dict(envelope("doctor", doctor_report("ok")), **change)
    found = schema.problem(env)
    assert found is not None and found.startswith(where), found


def test_a_doctor_shaped_report_is_not_a_verify_report():
    assert schema.problem(envelope("verify", doctor_report("ok"))).startswith("report")


def test_doctor_cell_is_its_worst_check_with_the_fix_as_hint():
    assert schema.cells("doctor", doctor_report("ok", "ok")) == {"doctor": ("pass", None)}
    state, first = schema.cells("doctor", doctor_report("ok", "warn", "fail", "fail"))["doctor"]
    assert state == "fail" and first == {"check": "check2", "detail": "detail 2", "hint": "fix 2"}
    assert schema.cells("doctor", doctor_report("warn"))["doctor"][0] == "warn"


def test_verify_sections_map_to_columns_3_and_4_together(lab):
    rep = verify_report(lab, [result("api", 3, passed()), result("net.route", 5, ROUTE),
                              result("web", 6, skipped("needs: route", blocked_by="net.route"))])
    cells = schema.cells("verify", rep)
    assert set(cells) == {"3", "4", "5", "6", "7", "8"}  # every section the run covered
    assert cells["3"] == cells["4"] == ("pass", None)
    state, first = cells["5"]
    assert state == "fail" and first["check"] == "title net.route" and first["detail"] == "no route for 10.32.0.0/12"
    assert "10.32.0.0/12" in first["hint"]
    assert cells["6"] == ("skip", None) and cells["7"] == ("skip", None)  # nothing ran there: not a pass


def test_a_stored_labkit_verify_1_report_is_still_read():
    """A report of the verify before labkit-checks/1 (written by that code; an earlier lesson's row in room.db,
    or a laptop not updated yet): accepted, and its words mapped onto the room's."""
    from pathlib import Path

    rep = json.loads((Path(__file__).parent / "verify_report_v1.json").read_text(encoding="utf-8"))
    assert rep["schema"] == "labkit-verify/1" and rep["checks"][1]["status"] == "failed"
    assert schema.problem(envelope("verify", rep)) is None
    cells = schema.cells("verify", rep)
    assert cells["3"] == cells["4"] == ("pass", None) and cells["6"] == ("skip", None)
    state, first = cells["5"]
    assert state == "fail" and first["check"] == "route to the pods via weave"
    assert first["hint"].startswith("the node has no route for the pod range 10.32.0.0/12")
    assert first["hint"].endswith('invoke vm.ssh --command "sudo ip route replace 10.32.0.0/12 dev weave"')
    rep["checks"][0]["status"] = "pass"  # one schema or the other, not a mix
    assert schema.problem(envelope("verify", rep)).startswith("report")


def test_a_section_run_touches_only_its_columns(lab):
    cells = schema.cells("section", verify_report(lab, [result("net.route", 5, ROUTE)], ["5"]))
    assert list(cells) == ["5"]


@pytest.fixture
def room(tmp_path):
    r = store.Room(tmp_path / "room.db")
    yield r
    r.close()


def test_store_keeps_history_and_the_latest_state_per_cell(room, tmp_path):
    room.add(envelope("doctor", doctor_report("fail"), taken=100, sent=100), received=1000)
    room.add(envelope("doctor", doctor_report("fail"), taken=160, sent=160), received=1060)
    room.add(envelope("doctor", doctor_report("ok"), taken=220, sent=220), received=1120)
    view = room.view(now=1200)
    [seat] = view["seats"]
    assert seat["name"] == "Ana" and seat["host"] == "laptop-7" and seat["last_seen"] == 1120
    assert seat["cells"]["doctor"]["state"] == "pass" and seat["cells"]["doctor"]["since"] == 1120
    assert view["counts"]["doctor"] == {"pass": 1}
    assert [h["report"][0]["status"] for h in room.history(SEAT)] == ["fail", "fail", "ok"]


def test_failing_since_is_the_start_of_the_streak(room):
    room.add(envelope("doctor", doctor_report("fail")), received=1000)
    room.add(envelope("doctor", doctor_report("fail")), received=1300)
    assert room.view()["seats"][0]["cells"]["doctor"]["since"] == 1000


def test_a_queued_report_arriving_late_does_not_overwrite_a_newer_one(room):
    room.add(envelope("doctor", doctor_report("ok"), taken=500, sent=500), received=2000)
    # taken 10 minutes before it was sent (queued while the room was down): placed at 2010 - 600
    room.add(envelope("doctor", doctor_report("fail"), taken=0, sent=600), received=2010)
    cell = room.view()["seats"][0]["cells"]["doctor"]
    assert cell["state"] == "pass" and cell["at"] == 2000
    assert [h["at"] for h in room.history(SEAT)] == [1410, 2000]


def test_clear_empties_the_page_and_keeps_history(room):
    room.add(envelope("doctor", doctor_report("fail")), received=1000)
    room.clear()
    assert room.view()["seats"] == [] and room.count() == 1 and len(room.history(SEAT)) == 1


def test_the_database_is_wal_and_survives_reopening(room, tmp_path):
    room.add(envelope("doctor", doctor_report("ok")), received=1000)
    room.close()
    again = store.Room(tmp_path / "room.db")
    assert again.count() == 1 and again.view()["seats"][0]["cells"]["doctor"]["state"] == "pass"
    again.close()
    assert sqlite3.connect(tmp_path / "room.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_class_code_and_token_are_made_once_and_kept_private(tmp_path):
    directory = tmp_path / "class"
    first, changed = store.class_secrets(directory)
    assert len(first["code"]) == 6 and set(first["code"]) <= set(store.CODE_ALPHABET) and changed
    assert store.class_secrets(directory) == (first, "")
    assert (directory / "class.json").stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700
    renewed, changed = store.class_secrets(directory, new_code=True)  # --new-code: the token (page URL) stays
    assert renewed["code"] != first["code"] and renewed["token"] == first["token"] and "new class code" in changed
    assert store.class_secrets(directory) == (renewed, "")


@pytest.mark.parametrize("damage", ["{not json", "[]", '{"code": 1}'])
def test_a_damaged_class_file_is_never_silently_replaced(tmp_path, damage):
    store.class_secrets(tmp_path)
    (tmp_path / "class.json").write_text(damage)
    with pytest.raises(store.Damaged):
        store.class_secrets(tmp_path)
    assert (tmp_path / "class.json").read_text() == damage
    fresh, changed = store.class_secrets(tmp_path, new_code=True)
    assert "damaged" in changed and len(fresh["token"]) > 20


def test_seat_keys_depend_on_token_and_seat():
    key = store.seat_key("token-1", SEAT)
    assert len(key) == 32 and key == store.seat_key("token-1", SEAT)
    assert key != store.seat_key("token-2", SEAT) and key != store.seat_key("token-1", "f" * 16)


def test_csv_has_a_row_per_seat_and_defuses_formulas(room):
    room.add(envelope("doctor", doctor_report("fail"), name="=HYPERLINK(\"http://x\")"), received=1000)
    room.add(envelope("doctor", doctor_report("ok"), seat="f" * 16, name="Bo, \"the\" second"), received=1000)
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(store.csv_text(room.view()))))
    assert [r["name"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "Bo, \"the\" second"]
    assert rows[0]["doctor"] == "fail" and rows[0]["doctor_problem"] == "check0: detail 0"
    assert rows[1]["doctor"] == "pass" and rows[1]["5"] == ""


def test_flood_limit_allows_a_burst_then_one_per_second():
    bucket = appmod.Bucket(burst=3, per=1.0)
    assert [bucket.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take("b", 0.0)  # another seat is not held up
    assert not bucket.take("a", 0.5) and bucket.take("a", 1.6)


def joined(tmp_path, url="http://127.0.0.1:9"):
    data = {"url": url, "code": "ABCDEF", "name": "Ana", "seat": SEAT, "key": "k" * 32}
    (tmp_path / ".labkit").mkdir(exist_ok=True)
    (tmp_path / ".labkit" / client.RECORD).write_text(json.dumps(data))
    return data


def test_not_joined_sends_nothing_and_says_nothing(tmp_path, capsys):
    client.send(tmp_path, "doctor", doctor_report("ok"))
    assert capsys.readouterr() == ("", "") and not (tmp_path / ".labkit").exists()


def test_unreachable_room_queues_with_one_quiet_line(tmp_path, capsys):
    joined(tmp_path)  # port 9 (discard) is closed on loopback: refused at once
    client.send(tmp_path, "doctor", doctor_report("fail"))
    client.send(tmp_path, "doctor", doctor_report("ok"))
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines()[-1].startswith("class: room not reachable at http://127.0.0.1:9; 2 report(s)")
    queued = sorted((tmp_path / ".labkit" / client.QUEUE).glob("*.json"))
    assert [json.loads(q.read_text())["report"][0]["status"] for q in queued] == ["fail", "ok"]
    first = json.loads(queued[0].read_text())
    assert schema.problem(dict(first, sent=first["taken"] + 5)) is None


def test_the_queue_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(client, "QUEUE_MAX", 3)
    data = joined(tmp_path)
    for _ in range(5):
        client.enqueue(tmp_path, data, "doctor", doctor_report("ok"))
    assert len(list((tmp_path / ".labkit" / client.QUEUE).glob("*.json"))) == 3


def test_send_never_raises(tmp_path, capsys):
    joined(tmp_path, url="http://[::1")  # a record damaged by hand
    client.send(tmp_path, "doctor", doctor_report("ok"))
    assert capsys.readouterr().err.startswith("class: ")


def test_section_progress_reports_fill_their_sections(tmp_path):
    """What section.check/progress send: labkit/student/progress.as_json of real SectionStates."""
    from labkit import checks
    from labkit.student import progress as prog

    states = [prog.SectionState(1, "VM", prog.DONE), prog.SectionState(2, "Docker", prog.IN_PROGRESS),
              prog.SectionState(3, "kubeadm", prog.NOT_STARTED, blocked_by=2)]
    states[1].outcomes = [checks.Checked(checks.Check("docker", "docker runs", None), checks.failed(
        "no docker", "docker is not installed", "sudo apt-get install docker.io"))]
    rep = json.loads(json.dumps(prog.as_json(states, "master")))
    assert schema.problem(envelope("progress", rep)) is None
    cells = schema.cells("progress", rep)
    assert cells["1"] == ("pass", None) and cells["3"] == ("skip", None) and set(cells) == {"1", "2", "3"}
    assert cells["2"] == ("fail", {"check": "docker runs", "detail": "docker is not installed",
                                   "hint": "sudo apt-get install docker.io"})
    assert schema.problem(envelope("progress", dict(rep, sections=[{"section": 9, "status": "done"}]))) is not None


def test_a_report_sent_twice_is_stored_once(room):
    first = room.add(envelope("doctor", doctor_report("fail"), taken=100, sent=100), received=1000)
    again = room.add(envelope("doctor", doctor_report("fail"), taken=100, sent=103), received=1003)
    assert again == first and room.count() == 1
    assert room.add(envelope("doctor", doctor_report("ok"), taken=101, sent=103), received=1003) != first


# --- hostile input (issue 25) ------------------------------------------------------------------------

@pytest.mark.parametrize("body, why", [
    (b'{"sent": 1e400}', "too large a number"),
    (b'{"sent": Infinity}', "Infinity is not a number JSON allows"),
    (b'{"sent": -Infinity}', "-Infinity is not a number JSON allows"),
    (b'{"sent": NaN}', "NaN is not a number JSON allows"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"name": "\xff"}', "not UTF-8"),
])
def test_parse_refuses_what_python_json_would_take(body, why):
    with pytest.raises(ValueError, match=why):
        schema.parse(body)


def test_parse_keeps_ordinary_numbers():
    assert schema.parse(b'{"a": 1.5, "b": 10000000000000000000000, "c": -2e3}') == {
        "a": 1.5, "b": 10 ** 22, "c": -2000.0}


@pytest.mark.parametrize("change, where", [
    ({"taken": 10 ** 22}, "taken"),
    ({"sent": -1}, "sent"),
    ({"name": "\ud800"}, "the report: text with a lone surrogate"),
    ({"host": "a\udfffb"}, "the report: text with a lone surrogate"),
    ({"name": "\u200b\u202e \t"}, "name: needs a letter"),
    ({"sent": 100.0 + 31 * 86400}, "sent: "),    # queued longer than a month
    ({"sent": 100.0 - 3600}, "sent: "),          # sent an hour before it was taken
    ({"report": [{"name": "ram", "status": "ok", "extra": {"a": 1}}]}, "report/0"),  # nested objects are closed
    ({"report": [{"name": "ram", "status": "ok", "detail": float("inf")}]}, "the report: a number that is not finite"),
])
def test_hostile_envelopes_are_named(change, where):
    found = schema.problem(dict(envelope("doctor", doctor_report("ok")), **change))
    assert found is not None and found.startswith(where), found


def test_deep_nesting_is_refused_without_recursion():
    deep = []
    for _ in range(900):
        deep = [deep]
    found = schema.problem(dict(envelope("doctor", doctor_report("ok")), report=deep))
    assert found == f"the report: nested deeper than {schema.MAX_DEPTH} levels"


def test_every_nested_object_of_verify_and_progress_is_closed(lab):
    rep = verify_report(lab, [result("net.route", 5, ROUTE)])
    old = json.loads((Path(__file__).parent / "verify_report_v1.json").read_text(encoding="utf-8"))  # labkit-verify/1
    for report_, path in [(rep, ()), (rep, ("lab",)), (rep, ("summary",)), (rep, ("checks", 0)), (old, ()),
                          (old, ("checks", 1)), (old, ("checks", 1, "hint"))]:
        assert schema.problem(envelope("verify", report_)) is None
        bad = json.loads(json.dumps(report_))
        target = bad
        for p in path:
            target = target[p]
        target["smuggled"] = {"x": [1, 2]}
        assert schema.problem(envelope("verify", bad)) is not None, path
    progress = {"sections": [{"section": 1, "status": "in progress", "first_failure": {"check": "c", "x": 1}}]}
    assert schema.problem(envelope("progress", progress)) is not None


@pytest.mark.parametrize("raw, shown", [
    ("  Ana\t\tLima ", "Ana Lima"),
    ("Jose\u0301", "Jos\u00e9"),              # NFC: one é
    ("\u202eAna\u202c", "Ana"),              # a right-to-left override is dropped
    ("A\u200bna\u0007", "Ana"),              # zero-width space and BEL
    ("\u05e9\u05e8\u05d4 1", "\u05e9\u05e8\u05d4 1"),  # Hebrew stays (the page isolates it)
])
def test_names_are_normalised(raw, shown):
    assert schema.clean_text(raw) == shown
    assert schema.problem_of_name(raw) is None


def test_a_store_written_before_numbers_were_checked_still_answers(tmp_path):
    """The old version stored "sent": 1e400 as at = -inf, and bodies holding Infinity."""
    old = store.Room(tmp_path / "room.db")
    old.add(envelope("doctor", doctor_report("fail")), received=1000)
    old.close()
    db = sqlite3.connect(tmp_path / "room.db")
    db.execute("UPDATE cells SET at = ?, since = ?", (float("-inf"), float("inf")))  # NaN: SQLite keeps NULL
    db.execute("UPDATE seats SET last_seen = ?", (float("inf"),))
    db.execute("UPDATE reports SET at = ?, body = ?", (float("-inf"), '[{"name": "x", "status": "ok", "t": Infinity}]'))
    db.commit()
    db.close()
    room = store.Room(tmp_path / "room.db")
    view, history = room.view(), room.history(SEAT)
    json.dumps(view, allow_nan=False)  # what Starlette's JSONResponse does: raises on any Infinity/NaN
    json.dumps(history, allow_nan=False)
    cell = view["seats"][0]["cells"]["doctor"]
    assert cell["state"] == "fail" and cell["at"] is None and cell["since"] is None
    assert history[0]["at"] is None and history[0]["report"][0]["t"] is None
    assert store.csv_text(view).splitlines()[1].startswith("Ana,laptop-7,,fail")
    room.close()


def test_room_files_are_private(tmp_path):
    directory = tmp_path / "class"
    directory.mkdir(mode=0o755)
    (directory / "room.db").touch(mode=0o644)  # made by an older labkit
    room = store.Room(directory / "room.db")
    room.add(envelope("doctor", doctor_report("ok")), received=1000)
    modes = {p.name: p.stat().st_mode & 0o777 for p in directory.iterdir()}
    assert directory.stat().st_mode & 0o777 == 0o700
    assert modes == {"room.db": 0o600, "room.db-wal": 0o600, "room.db-shm": 0o600}
    room.close()


def test_seats_and_bytes_per_seat_are_capped(room, monkeypatch):
    monkeypatch.setattr(store, "MAX_SEATS", 2)
    room.add(envelope("doctor", doctor_report("ok"), seat="a" * 16), received=1000)
    room.add(envelope("doctor", doctor_report("ok"), seat="b" * 16), received=1000)
    with pytest.raises(store.Refused) as full:
        room.add(envelope("doctor", doctor_report("ok"), seat="c" * 16), received=1000)
    assert full.value.status == 409 and room.full()
    size = len(json.dumps(doctor_report("ok")))
    monkeypatch.setattr(store, "MAX_SEAT_BYTES", 2 * size)
    room.add(envelope("doctor", doctor_report("ok"), seat="a" * 16, taken=101, sent=101), received=1001)
    with pytest.raises(store.Refused) as over:
        room.add(envelope("doctor", doctor_report("ok"), seat="a" * 16, taken=102, sent=102), received=1002)
    assert over.value.status == 413 and room.count() == 3


def test_duplicate_names_are_flagged(room):
    room.add(envelope("doctor", doctor_report("ok"), seat="a" * 16, name="Ana"), received=1000)
    room.add(envelope("doctor", doctor_report("ok"), seat="b" * 16, name="ana"), received=1000)
    room.add(envelope("doctor", doctor_report("ok"), seat="c" * 16, name="Bo"), received=1000)
    assert [(s["name"], s["duplicate"]) for s in room.view()["seats"]] == [("Ana", True), ("ana", True), ("Bo", False)]


def test_each_cell_names_the_report_that_decided_it(room):
    first = room.add(envelope("doctor", doctor_report("fail"), taken=100, sent=100), received=1000)
    second = room.add(envelope("doctor", doctor_report("ok"), taken=160, sent=160), received=1060)
    assert first != second and room.view()["seats"][0]["cells"]["doctor"]["report"] == second


def test_the_posts_bucket_peeks_without_taking():
    bucket = appmod.Bucket(burst=2, per=10.0)
    assert not bucket.empty("x", 0.0) and bucket.take("x", 0.0) and bucket.take("x", 0.0)
    assert bucket.empty("x", 1.0) and bucket.wait("x", 1.0) == 9
    assert not bucket.empty("x", 10.5)


def test_the_queue_skips_damaged_entries_and_keeps_reports_on_403(tmp_path):
    """A real room (uvicorn in a thread) with a changed class code: the queue stays, the line says join again."""
    import threading

    import uvicorn

    from labkit.room import server as roomserver

    room = store.Room(tmp_path / "class" / "room.db")
    app = appmod.create_app(room, "NEWCDE", "tok")
    sock = __import__("socket").create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    web = uvicorn.Server(roomserver.config(app))
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        data = joined(tmp_path, url=f"http://127.0.0.1:{port}")  # joined with the old code ABCDEF
        queue = tmp_path / ".labkit" / client.QUEUE
        queue.mkdir()
        (queue / "0-bad.json").write_text("[1, 2]")       # JSON, but not a report
        (queue / "1-bad.json").write_text("{not json")
        client.enqueue(tmp_path, data, "doctor", doctor_report("ok"))
        import time as t
        deadline = t.monotonic() + 10
        while not web.started:
            assert t.monotonic() < deadline
            t.sleep(0.05)
        done = client.flush(tmp_path, client.record(tmp_path))
        assert done.sent == 0 and done.left == 1 and done.stopped.startswith("403 wrong class code")
        assert [p.name.endswith("-doctor.json") for p in queue.iterdir()] == [True]  # bad ones skipped, report kept
        told = client.line(client.record(tmp_path), done)
        assert "answered 403 wrong class code; 1 report(s) queued. Join again" in told
        assert 'invoke class.join http://127.0.0.1:' in told and '--name "Ana"' in told
    finally:
        web.should_exit = True
        thread.join(10)
        room.close()


def checks_report(*statuses):
    """labkit.checks.as_json, the shape doctor sends once it runs on labkit/checks.py (issue 24)."""
    from labkit import checks

    results = [checks.Checked(checks.Check(f"c{i}", f"title {i}", lambda t: None),
                              checks.Result(s, f"detail {i}", fix="fix" if s != "pass" else ""))
               for i, s in enumerate(statuses)]
    return json.loads(json.dumps(checks.as_json(results, kind="doctor", host="laptop", time="2026-12-07T08:00:00+00:00")))


def test_labkit_checks_reports_are_read_and_closed():
    rep = checks_report("pass", "warn", "fail", "skip")
    assert schema.problem(envelope("doctor", rep)) is None
    assert schema.cells("doctor", rep)["doctor"] == ("fail", {"check": "title 2", "detail": "detail 2", "hint": "fix"})
    smuggled = dict(rep, extra={"deep": [1]})
    assert schema.problem(envelope("doctor", smuggled)) is not None  # a sender's own fields are scalars only
    assert schema.problem(envelope("doctor", dict(rep, node="master"))) is None
    bad = json.loads(json.dumps(rep))
    bad["checks"][0]["x"] = 1
    assert schema.problem(envelope("doctor", bad)) is not None
    bad = json.loads(json.dumps(rep))
    bad["checks"][0]["status"] = "ok"
    assert schema.problem(envelope("doctor", bad)) is not None
