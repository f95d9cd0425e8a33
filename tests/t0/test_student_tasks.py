"""T0: what section.check and section.progress print, on recorded node answers (the VM is the only
stand-in: tests/t0/test_student_checks.Node answers with real output captured from apt and dpkg)."""
from __future__ import annotations

import json

import pytest
from invoke import Context, Exit

from labkit import steps
from labkit.student import live
from labkit.tasks import section
from tests.t0.test_student_checks import DPKG_ALL, SECTION_1_DONE, WANT, Node, out


class FakeLab:
    """The live lab of the section tasks: the master answers with recorded output, the VM runs."""

    answers: dict = {}


@pytest.fixture
def lab(monkeypatch):
    monkeypatch.setattr(section, "_context", lambda s: steps.Context(
        s, reach=lambda name: Node(FakeLab.answers), vm_state=lambda name: "running"))
    monkeypatch.setattr(live, "want_for", lambda s: WANT)
    return FakeLab


def test_check_names_the_earlier_section_that_is_not_done_and_checks_nothing_after_it(lab, capsys):
    lab.answers = {"test -f": out(""), "grep -Hs": out("")}
    with pytest.raises(Exit) as done:
        section.check(Context(), n="3")
    assert done.value.code == 1
    printed = capsys.readouterr().out
    assert "Section 3 cannot be checked yet: section 1 (Install Kubernetes package support) is not done." in printed
    assert "Cause: no package source names the local Kubernetes repository yet" in printed
    assert ('Next:  echo "deb [trusted=yes] file:/opt/labkit/apt kubernetes-xenial main" | sudo tee -a '
            "/etc/apt/sources.list.d/kubernetes.list") in printed
    assert "Or let the kit do it: invoke section.solve 1" in printed


def test_check_says_done_and_progress_writes_json(lab, capsys, tmp_path):
    lab.answers = {**SECTION_1_DONE, "dpkg-query": out(DPKG_ALL), "systemctl is-enabled": out("enabled\n"),
                   "cat /proc/swaps": out("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"),
                   "sysctl -n": out("1\n1\n"), "ls /etc/kubernetes/manifests": out("")}
    section.check(Context(), n="2")
    assert "Section 2 is done. Next: section 3." in capsys.readouterr().out
    report = tmp_path / "progress.json"
    section.progress(Context(), json=str(report))
    printed = capsys.readouterr().out
    assert "Next: sudo kubeadm init" in printed and f"Progress written to {report}" in printed
    data = json.loads(report.read_text())
    assert [s["status"] for s in data["sections"]] == ["done", "done"] + ["not started"] * 6
    assert data["current"] == 3 and data["sections"][2]["first_failure"]["check"] == "manifests"


def test_a_section_number_outside_the_lab_is_one_line():
    with pytest.raises(Exit) as bad:
        section.check(Context(), n="9")
    assert bad.value.code == 1 and "'9' is not a section of the lab. Fix: give a number from 1 to 8" in str(bad.value)
