"""T1: the class's laptops: `invoke class.send --report` of a real acceptance report (labkit.acceptance.report)
to the real `invoke class.serve`, the laptops view over HTTP and in headless Chromium, hostile text in every field."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from labkit import acceptance
from labkit.room import client
from tests.support.bundle import invoke
from tests.support.room import ClassServe
from tests.support.room import wait_for

pytestmark = pytest.mark.t1

HOSTILE = "<img src=x onerror=alert(1)> =cmd|' /C calc'!A0 \u202eevil"


def report_file(path: Path, hostile: str = HOSTILE) -> Path:
    """A report as `invoke acceptance` writes it: its own report() of phase results, hostile text everywhere."""
    from labkit import checks

    facts = {k: f"{k}: {hostile}" for k in ("host os", "cpu", "ram", "free disk", "virtualbox", "vagrant",
                                               "provider", "nodes", "box", "bundle lock", "labkit")}

    def phase(name, result, seconds=0.0):
        return checks.Checked(checks.Check(name, name, lambda timeout: result), result, seconds)

    done = [phase("doctor", checks.passed(), 3.2),
            phase("vm.up", checks.failed(f"vm.up failed: {hostile}", fix=f"invoke vm.destroy then vm.up {hostile}"), 312.5),
            phase("cluster.init", checks.skipped("needs: vm.up"))]
    evidence = {"doctor": acceptance.Evidence("invoke doctor", "2026-11-30T09:00:01+00:00"),
                "vm.up": acceptance.Evidence("invoke vm.up", "2026-11-30T09:00:05+00:00")}
    path.write_text(acceptance.report(facts, done, "2026-11-30T09:00:00+00:00", evidence), encoding="utf-8")
    return path


@pytest.fixture
def room(tmp_path):
    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    yield srv
    srv.stop()


def joined_project(tmp_path, srv, name=HOSTILE) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    client.join(project, srv.url, srv.code, name)
    return project


def test_class_send_report_puts_the_laptop_in_the_laptops_view(room, tmp_path):
    project = joined_project(tmp_path, room)
    sent = invoke("class.send", "--report", report_file(tmp_path / "acceptance-lab-01-20261207T090000Z.md"),
                  env={"INVOKE_LABKIT_ROOT": str(project)})
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == f"class: report sent to the room as {HOSTILE.replace(chr(0x202e), '')}"
    view = room.get("/api/laptops").json()
    [lap] = view["laptops"]
    assert lap["laptop"]["cpu"] == f"cpu: {HOSTILE}" and view["phases"] == ["doctor", "vm.up", "cluster.init"]
    assert lap["phases"]["vm.up"] == {"name": "vm.up", "status": "fail", "started": "2026-11-30T09:00:05+00:00",
                                      "seconds": 312.5, "error": f"vm.up failed: {HOSTILE}",
                                      "hint": f"invoke vm.destroy then vm.up {HOSTILE}"}
    assert lap["phases"]["cluster.init"]["status"] == "skip"
    exported = room.get("/api/laptops.csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="laptops.csv"'
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert row["vm.up"] == "fail" and row["vm.up_seconds"] == "312.5" and row["host os"] == f"host os: {HOSTILE}"
    assert json.loads(room.get("/api/laptops.json").content)["laptops"][0]["seat"] == lap["seat"]
    assert room.get("/api/laptops", token="").status_code == 403


def test_a_file_that_is_not_an_acceptance_report_is_one_line(room, tmp_path):
    project = joined_project(tmp_path, room, "Ana")
    (tmp_path / "notes.md").write_text("# my notes\n")
    ran = invoke("class.send", "--report", tmp_path / "notes.md", env={"INVOKE_LABKIT_ROOT": str(project)})
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert ran.stderr.strip() == (f"labkit: {tmp_path / 'notes.md'} is not an acceptance report (it does not start "
                                  "with '# labkit acceptance report' (docs/acceptance.md)). Fix: pass the "
                                  "acceptance-<laptop>-<time>.md file that invoke acceptance wrote")
    assert room.stored() == 0


def test_the_laptops_view_in_a_browser_shows_hostile_text_as_text(room, tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    project = joined_project(tmp_path, room)
    report = report_file(tmp_path / "a.md")
    started = "<img/src=x/onerror=alert(2)>"  # the run's start too, as a hand-edited file could have it
    report.write_text(report.read_text().replace("Run started 2026-11-30T09:00:00+00:00 (UTC).",
                                                 f"Run started {started} (UTC)."))
    assert invoke("class.send", "--report", report, env={"INVOKE_LABKIT_ROOT": str(project)}).returncode == 0
    browser.get(room.page_url())
    wait_for(lambda: browser.find_element(By.ID, "show-laptops").is_displayed())
    browser.find_element(By.ID, "show-laptops").click()
    rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#laptops-rows tr"))
    assert len(rows) == 1 and not browser.find_element(By.ID, "seats-view").is_displayed()
    assert not browser.find_element(By.ID, "needs-help").is_displayed()  # the grid's filter and exports go too
    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#laptops-head th")]
    assert heads == ["seat", "run started", "host os", "cpu", "ram", "virtualbox", "vagrant", "provider",
                     "doctor", "vm.up", "cluster.init"]
    facts = [td.text for td in rows[0].find_elements(By.CSS_SELECTOR, "td.fact")]
    assert facts[0] == started and facts[1] == f"host os: {HOSTILE}" and facts[2] == f"cpu: {HOSTILE}"
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []  # every field is text, nothing became an element
    vm_up = rows[0].find_element(By.CSS_SELECTOR, 'td[data-phase="vm.up"]')
    assert vm_up.get_attribute("class") == "cell fail" and vm_up.text.splitlines() == ["fail", "312.5 s"]
    vm_up.click()  # the failing phase's error and hint, one click away
    assert browser.find_element(By.ID, "detail-title").text.endswith("acceptance phase vm.up: fail")
    assert browser.find_element(By.ID, "detail-found").text == f"vm.up failed: {HOSTILE}"
    assert browser.find_element(By.ID, "detail-hint").text == f"invoke vm.destroy then vm.up {HOSTILE}"
    assert f"acceptance run started {started}, received " in browser.find_element(By.ID, "detail-report").text
    browser.find_element(By.ID, "laptops-csv").click()
    exported = wait_for(lambda: [p for p in (tmp_path / "downloads").glob("laptops*.csv")])[0]
    lines = wait_for(lambda: Path(exported).read_text().splitlines())
    assert lines[0].startswith("name,host,run_started,host os,cpu")
    assert not [e for e in browser.get_log("browser") if "alert" in e.get("message", "")]
    browser.find_element(By.ID, "show-seats").click()
    assert browser.find_element(By.ID, "seats-view").is_displayed() and not browser.find_element(By.ID, "detail").is_displayed()
