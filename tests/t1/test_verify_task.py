"""`invoke verify` for real, on a project copy with no VM and no kubeconfig (a laptop before vm.up).

Real invoke, settings, kubernetes client, python-vagrant and `vagrant ssh-config`: verify must not
crash, must fail exactly the two checks that explain everything else, and write its JSON report.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need_binary

pytestmark = pytest.mark.t1

INVOKE = str(Path(sys.executable).with_name("invoke"))


@pytest.fixture(scope="module")
def project(repo, tmp_path_factory) -> Path:
    need_binary("vagrant")
    root = tmp_path_factory.mktemp("project")
    for name in ("tasks.py", "settings.yaml", "Vagrantfile"):
        shutil.copy(repo / name, root / name)
    for name in ("vagrant", "provision"):
        shutil.copytree(repo / name, root / name)
    return root


def invoke(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, *args], cwd=project, capture_output=True, text=True, timeout=120)


def test_verify_before_the_lab_exists(project):
    out = invoke(project, "verify", "--json", "report.json")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    report = json.loads((project / "report.json").read_text())
    failed = {c["id"]: c["key"] for c in report["checks"] if c["status"] == "fail"}
    assert failed == {"api": "no-kubeconfig", "node.ssh": "node-unreachable"}
    skipped = [c for c in report["checks"] if c["status"] == "skip"]
    assert len(skipped) == len(report["checks"]) - 2
    assert {c["blocked_by"] for c in skipped} == {"api", "node.ssh"}
    assert report["schema"] == "labkit-checks/1" and report["kind"] == "verify"
    assert report["summary"]["ok"] is False and report["summary"]["fail"] == 2
    # What the student reads: the table, the summary, and the two fixes.
    assert "Lab 7 checks" in out.stdout and "0 pass, 2 fail" in out.stdout
    assert "fix:   invoke cluster.init" in out.stdout and "fix:   invoke vm.up" in out.stdout


def test_one_section_and_a_wrong_section(project):
    out = invoke(project, "verify", "--section", "5", "--json", "s5.json")
    report = json.loads((project / "s5.json").read_text())
    assert report["sections"] == ["5"]
    assert {c["section"] for c in report["checks"]} == {"3-4", "5"}  # section 5 and what it stands on
    assert out.returncode == 1
    wrong = invoke(project, "verify", "--section", "9")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == ("labkit: there is no section '9' to verify. "
                                   "Fix: use --section 3, 4, 5, 6, 7 or 8 (3-4 is one group)")
