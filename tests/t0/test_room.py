"""The room's logic: report schema, cells per column, the SQLite store, CSV, the flood limit, the student's queue."""
import datetime
import json
import sqlite3

import pytest

from labkit import checks
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
    """What tasks/doctor.py sends: doctor.as_json of its checks' results ("ok" stands for pass)."""
    results = [checks.Checked(checks.Check(f"check{i}", f"title {i}", lambda t: None),
                              checks.Result(checks.PASS if s == "ok" else s, f"detail {i}", fix=f"fix {i}" if s != "ok" else ""))
               for i, s in enumerate(statuses)]
    return json.loads(json.dumps(doctormod.as_json(results)))


def old_doctor_report(*statuses):
    """What doctor sent before labkit-checks/1 (a list of rows): still in queues and stores."""
    return [{"name": f"check{i}", "status": s, "detail": f"detail {i}", "fix": f"fix {i}" if s != "ok" else ""}
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
    ({"report": [{"name": "ram", "status": "broken"}]}, "report"),
    ({"report": {"schema": "labkit-checks/1", "checks": [{"id": "ram", "status": "ok"}]}}, "report"),
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
    assert state == "fail" and first == {"check": "title 2", "detail": "detail 2", "hint": "fix 2"}
    assert schema.cells("doctor", doctor_report("warn"))["doctor"][0] == "warn"
    assert schema.cells("doctor", doctor_report("ok", "skip"))["doctor"] == ("pass", None)


def test_doctor_reports_of_the_old_shape_are_still_valid_and_read():
    assert schema.problem(envelope("doctor", old_doctor_report("ok", "warn", "fail"))) is None
    state, first = schema.cells("doctor", old_doctor_report("ok", "warn", "fail"))["doctor"]
    assert state == "fail" and first == {"check": "check2", "detail": "detail 2", "hint": "fix 2"}
    assert schema.cells("doctor", old_doctor_report("ok"))["doctor"] == ("pass", None)


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
    assert [h["report"]["checks"][0]["status"] for h in room.history(SEAT)] == ["fail", "fail", "pass"]


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
    first = store.class_secrets(tmp_path)
    assert len(first["code"]) == 6 and set(first["code"]) <= set(store.CODE_ALPHABET)
    assert store.class_secrets(tmp_path) == first
    assert (tmp_path / "class.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "class.json").write_text("{not json")
    assert store.class_secrets(tmp_path)["code"] != ""  # a damaged file is replaced, not a crash


def test_csv_has_a_row_per_seat_and_defuses_formulas(room):
    room.add(envelope("doctor", doctor_report("fail"), name="=HYPERLINK(\"http://x\")"), received=1000)
    room.add(envelope("doctor", doctor_report("ok"), seat="f" * 16, name="Bo, \"the\" second"), received=1000)
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(store.csv_text(room.view()))))
    assert [r["name"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "Bo, \"the\" second"]
    assert rows[0]["doctor"] == "fail" and rows[0]["doctor_problem"] == "title 0: detail 0"
    assert rows[1]["doctor"] == "pass" and rows[1]["5"] == ""


def test_flood_limit_allows_a_burst_then_one_per_second():
    bucket = appmod.Bucket(burst=3, per=1.0)
    assert [bucket.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take("b", 0.0)  # another seat is not held up
    assert not bucket.take("a", 0.5) and bucket.take("a", 1.6)


def joined(tmp_path, url="http://127.0.0.1:9"):
    data = {"url": url, "code": "ABCDEF", "name": "Ana", "seat": SEAT}
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
    assert [json.loads(q.read_text())["report"]["checks"][0]["status"] for q in queued] == ["fail", "pass"]
    assert schema.problem(dict(json.loads(queued[0].read_text()), sent=1.0)) is None


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
    from labkit.student import progress as prog
    from labkit.student.checks import Finding
    from labkit.student.sections import SectionOutcome

    states = [prog.SectionState(1, "VM", prog.DONE), prog.SectionState(2, "Docker", prog.IN_PROGRESS),
              prog.SectionState(3, "kubeadm", prog.NOT_STARTED, blocked_by=2)]
    states[1].outcomes = [SectionOutcome("docker", "docker runs", Finding("docker is not installed",
                                                                          "sudo apt-get install docker.io"))]
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
