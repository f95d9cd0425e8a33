"""T1: the acceptance run's phases as real processes: a phase over its timeout gets Ctrl-C in its whole
process group (so a Vagrant under it cleans up) and is killed if it ignores it; Ctrl-C of the run stops
the running phase and leaves a report of every finished phase plus the interrupted one; output bytes
that are not UTF-8 are read, not fatal. The phases are small Python programs standing in for the tasks
(VirtualBox cannot run here) and writing their results with the real labkit.results."""
from __future__ import annotations

import _thread
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit import acceptance, checks, results
from tests.support.env import REPO

pytestmark = pytest.mark.t1

PHASE = r'''
import os, signal, subprocess, sys, time
sys.path.insert(0, os.environ["REPO"])
from labkit import results
what = sys.argv[1]
if what in ("vm.up", "hang"):
    child = subprocess.Popen(["sleep", "300"])  # Vagrant under the task
    with open(os.environ["CHILD_PID"], "w") as fh:
        fh.write(str(child.pid))
    results.record("step", title="Creating VM ubuntu", outcome="ok", note="", seconds=1.0)
    print("booting", flush=True)
    try:
        child.wait()
    except KeyboardInterrupt:
        print("interrupted: waiting for Vagrant to clean up", flush=True)
        child.wait(10)  # it got the same Ctrl-C (one process group)
        results.record("step", title="Provisioning ubuntu", outcome="interrupted", note="", seconds=2.0)
        sys.exit(130)
elif what == "deaf":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(300)
elif what == "bytes":
    sys.stdout.buffer.write(b"VBoxManage: \xff\xfe \xc3(\n")
else:
    results.record("step", title=what, outcome="ok", note="", seconds=0.1)
'''


@pytest.fixture
def runner(tmp_path):
    script = tmp_path / "phase.py"
    script.write_text(PHASE)
    env = dict(os.environ, REPO=str(REPO), CHILD_PID=str(tmp_path / "child.pid"))
    return acceptance.Runner(tmp_path, env=env, command=[sys.executable, str(script)])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_phase_over_its_timeout_is_stopped_with_ctrl_c_in_its_whole_group(runner, tmp_path):
    started = time.monotonic()
    ran = runner.run(["hang"], lambda line: None, timeout=2, results_file=tmp_path / "r")
    assert ran.stopped and ran.code == 130 and time.monotonic() - started < 20
    assert "interrupted: waiting for Vagrant to clean up" in ran.output  # it got Ctrl-C and cleaned up
    child = int((tmp_path / "child.pid").read_text())
    assert not alive(child)  # the grandchild got it too
    assert [r["outcome"] for r in results.read(tmp_path / "r")] == ["ok", "interrupted"]


def test_a_phase_that_ignores_ctrl_c_is_killed(runner, monkeypatch):
    monkeypatch.setattr(acceptance, "STOP_WAIT", 1.0)
    started = time.monotonic()
    ran = runner.run(["deaf"], lambda line: None, timeout=1)
    assert ran.stopped and ran.code == -9 and time.monotonic() - started < 15


def test_output_that_is_not_utf8_is_read(runner):
    ran = runner.run(["bytes"], lambda line: None, timeout=30)
    assert ran.code == 0 and ran.output == "VBoxManage: \ufffd\ufffd \ufffd(\n"


def test_ctrl_c_of_the_run_leaves_every_finished_phase_and_the_interrupted_one(runner, tmp_path):
    nodes = [type("Node", (), {"name": "ubuntu", "role": "master"})()]
    run = acceptance.Run(runner, tmp_path, nodes, destroy=False, echo=lambda line: None)
    written = []

    def ctrl_c_once_vm_up_boots():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "child.pid").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        _thread.interrupt_main()  # what Ctrl-C does to the acceptance process

    threading.Thread(target=ctrl_c_once_vm_up_boots, daemon=True).start()
    done, interrupted = acceptance.run(run, written.append)
    assert interrupted
    by = {c.check.id: c for c in done}
    assert by["doctor"].status == checks.PASS
    assert by["vm.up"].status == checks.FAIL and by["vm.up"].result.key == "interrupted"
    assert [s["title"] for s in run.evidence["vm.up"].steps] == ["Creating VM ubuntu", "Provisioning ubuntu"]
    assert by["cluster.init"].result.detail == "needs: vm.up"
    assert [c.check.id for c in done] == [p.name for p in acceptance.PHASES if not p.destroy]
    assert not alive(int((tmp_path / "child.pid").read_text()))
    # the report written last has them all, the interrupted phase with what it did
    text = acceptance.report({}, written[-1], "t", run.evidence, "interrupted (Ctrl-C)")
    assert "### vm.up: fail" in text and "| Provisioning ubuntu | interrupted | 2.0s |" in text
    assert acceptance.read_json_text(text)["summary"] == {"checks": 11, "pass": 1, "warn": 0, "fail": 1, "skip": 9,
                                                          "ok": False}


def test_the_report_file_is_not_git_ignored():
    """It lands in the project beside the code: `git status` shows it, nothing hides it from the user."""
    import datetime
    import subprocess

    name = acceptance.report_name(datetime.datetime.now(datetime.timezone.utc))
    checked = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO)
    assert checked.returncode == 1, f"{name} is git-ignored"
