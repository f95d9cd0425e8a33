"""The verdict a student and an instructor read: table, summary, hints, JSON."""
import datetime
import json

import pytest

from labkit import settings as settings_mod
from labkit.verify import report
from labkit.verify.hints import CATALOG, make
from labkit.checks import Checked, skipped
from labkit.verify.model import LabCheck, Lab, failed, passed

ROUTE_FAIL = failed("no route for 10.32.0.0/12 in `ip route`", make("route-missing", cidr="10.32.0.0/12", node="ubuntu"))


@pytest.fixture(scope="module")
def lab(repo):
    return Lab.from_settings(settings_mod.load(repo, {}))


def result(cid, section, outcome, seconds=0.25):
    check = LabCheck(cid, f"title {cid}", lambda t: outcome, section=section, source="ubuntu", target="10.32.0.4:80")
    return Checked(check, outcome, seconds)


@pytest.fixture
def results():
    return [result("api", 3, passed("v1.15.12")),
            result("net.route", 5, ROUTE_FAIL),
            result("web.node", 6, skipped("needs: route", blocked_by="net.route"), 0.0)]


def test_rows_have_the_issue_columns(results):
    rows = report.rows(results)
    assert report.COLUMNS == ["section", "check", "from → to", "result", "time"]
    assert [r[0] for r in rows] == ["3-4", "5", "6"]
    assert rows[0][2] == "ubuntu → 10.32.0.4:80"
    assert rows[1][3].endswith(" fail: no route for 10.32.0.0/12 in `ip route`")
    assert rows[2][3].endswith(" skip: needs: route") and rows[2][4] == ""
    assert rows[0][3].endswith(" pass: v1.15.12")
    assert rows[0][4] == "0.2s"


def test_summary_and_hints(results):
    assert report.summary_line(results, 2.34) == "3 checks: 1 pass, 1 fail, 1 skip in 2.3s."
    assert report.summary_line(results[:1], 1.0) == "1 checks: all pass in 1.0s."
    lines = report.hint_lines(results)
    assert lines[0].endswith("title net.route  (ubuntu → 10.32.0.4:80)")
    assert lines[2].startswith("    cause: the node has no route for the pod range 10.32.0.0/12")
    assert lines[3] == '    fix:   invoke vm.ssh --command "sudo ip route replace 10.32.0.0/12 dev weave"'
    assert not report.all_passed(results) and report.all_passed(results[:1]) and not report.all_passed([])


def test_show_prints_table_summary_and_what_to_do(results, capsys):
    report.show(results, 1.5)
    out = capsys.readouterr().out
    assert "Lab 7 checks" in out and "3 checks: 1 pass, 1 fail, 1 skip in 1.5s." in out
    assert "What to do:" in out and "sudo ip route replace 10.32.0.0/12 dev weave" in out


def test_json_report_is_complete_and_written_atomically(results, lab, tmp_path):
    started = datetime.datetime(2026, 11, 24, 15, 38, tzinfo=datetime.timezone.utc)
    data = report.as_json(results, lab, 1.5, started)
    path = tmp_path / "room" / "alice.json"
    report.write_json(path, data)
    back = json.loads(path.read_text())
    assert back["schema"] == "labkit-checks/1" and back["kind"] == "verify"
    assert back["started"] == "2026-11-24T15:38:00+00:00" and back["sections"] == ["3-4", "5", "6", "7", "8"]
    assert back["summary"] == {"checks": 3, "pass": 1, "warn": 0, "fail": 1, "skip": 1, "ok": False}
    assert back["lab"]["kube_dns"] == "10.96.0.10" and back["lab"]["pod_cidr"] == "10.32.0.0/12"
    route = back["checks"][1]
    assert route["id"] == "net.route" and route["status"] == "fail" and route["key"] == "route-missing"
    assert route["cause"].startswith("the node has no route for the pod range 10.32.0.0/12")
    assert route["fix"] == 'invoke vm.ssh --command "sudo ip route replace 10.32.0.0/12 dev weave"'
    assert (route["section"], route["from"], route["to"]) == ("5", "ubuntu", "10.32.0.4:80")
    assert back["checks"][2]["blocked_by"] == "net.route" and "cause" not in back["checks"][2]
    assert [p.name for p in path.parent.iterdir()] == ["alice.json"]  # no temporary file left behind


def test_unknown_hint_values_stay_visible():
    assert make("route-missing", node="ubuntu").cause.count("{cidr?}") == 1


def test_docs_fault_table_is_the_t1_fault_list(repo):
    """docs/verify.md's fault table: one row per fault of the netns test, same failed checks and hint keys."""
    import re

    from tests.t1.test_verify_netns import FAULTS

    text = (repo / "docs" / "verify.md").read_text()
    table = text.split("### Fault table", 1)[1].split("\n\n", 2)[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    documented = sorted((tuple(sorted(re.findall(r"`([^`]+)`", flagged.split("failed", 1)[1].split(";")[0]))),
                         re.match(r"`([a-z-]+)`", hint).group(1)) for _fault, flagged, hint in rows)
    tested = sorted((tuple(sorted(f.failed)), *f.failed.values()) for f in FAULTS.values())
    assert documented == tested


def test_hint_keys_used_in_the_code_exist_and_none_is_dead(repo):
    import re

    sources = "".join(p.read_text() for p in (repo / "labkit" / "verify").rglob("*.py") if p.name != "hints.py")
    made = set(re.findall(r'hints\.make\(\s*"([a-z-]+)"', sources))
    assert made and made - set(CATALOG) == set()
    quoted = set(re.findall(r'"([a-z]+(?:-[a-z]+)*)"', sources))
    assert set(CATALOG) - quoted == set()
