"""T2: `invoke acceptance` on the libvirt stand-in, the test bundle without Kubernetes binaries.

The VM phases (vm.up, snapshot save and restore, halt and up again) pass for real; cluster.init fails
for want of kubeadm, and the report must say so as data, with the reason, and skip what needs it.
Runs after the other T2 tests but before the lifecycle test (it snapshots, halts and restarts the VM).
"""
from __future__ import annotations

import re

import pytest

from tests.support.vm import strip_ansi

pytestmark = pytest.mark.t2


def summary_rows(text: str) -> dict:
    summary = text[text.index("## Summary"):text.index("## Machine-readable")]
    return {m[1]: (m[2], m[3]) for m in re.finditer(r"^\| (\S+) \| (pass|fail|skip) \| [\d.]+s \| (.*) \|$", summary, re.M)}


def test_acceptance_reports_the_vm_phases_and_why_kubernetes_failed(lab_vm, tmp_path):
    report = tmp_path / "report.md"
    out = lab_vm.invoke("acceptance", "--output", str(report), timeout=3600)
    assert out.returncode == 1, "a run whose cluster.init failed must not exit 0"
    assert f"Report written to {report}: send this file back." in strip_ansi(out.stdout)
    text = report.read_text(encoding="utf-8")
    rows = summary_rows(text)
    for phase in ("vm.up", "snapshot.save", "snapshot.restore", "vm.halt", "vm.up.after-halt"):
        assert rows[phase][0] == "pass", (phase, rows[phase])
    node = lab_vm.settings.master.name
    assert rows["cluster.init"] == ("fail", f"kubeadm on {node} is not installed, settings want "
                                            f"{lab_vm.settings.versions['kubernetes']}")
    for phase in ("app.deploy", "verify", "verify.after-restore", "verify.after-reboot"):
        assert rows[phase] == ("skip", "needs: cluster.init"), phase
    assert "vm.destroy" not in rows
    # the failure carries its hint (from the task's data) and the VM's logs; the laptop's facts are there
    init = text[text.index("### cluster.init: fail"):text.index("### app.deploy")]
    assert "- hint: run invoke vm.provision --step kubernetes" in init
    assert "VM: docker journal" in init and "VM: dmesg tail" in init
    assert "| provider | libvirt |" in text and f"| box | {lab_vm.settings.box}" in text
    assert re.search(r"\| bundle lock \| test-bundle\.lock\.yaml sha256 [0-9a-f]{64} \|", text)
    assert "## doctor's checks (JSON)" in text and "the run is finished" in text
    # vm.up's status lines, written as data by the task, became its steps
    up = text[text.index("### vm.up: pass"):text.index("### cluster.init")]
    assert "| Checking prerequisites |" in up or f"| Starting VM {node} | skipped (already running) |" in up
    from labkit.acceptance import read_json

    machine = read_json(report)
    assert machine["kind"] == "acceptance" and machine["summary"]["fail"] >= 1
    # and the lab is still there
    assert lab_vm.ssh("test -e /etc/labkit/resolv.conf").returncode == 0


def test_acceptance_interrupted_mid_phase_leaves_every_finished_phase_and_the_interrupted_one(lab_vm, tmp_path):
    """SIGINT to `invoke acceptance` while vm.halt runs: the report has doctor .. snapshot.restore, vm.halt
    as interrupted, the rest skipped, and the run exits 130."""
    import os
    import signal
    import subprocess
    import time

    from tests.support.vm import INVOKE

    report = tmp_path / "report.md"
    proc = subprocess.Popen(INVOKE + ["acceptance", "--output", str(report)], cwd=lab_vm.settings.root, env=lab_vm.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # however pytest was started
    seen = []
    try:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            seen.append(raw.decode("utf-8", "replace"))
            if "Stopping VM" in seen[-1]:  # vm.halt's own status line: the phase is under way
                time.sleep(1)
                os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C does
                break
        rest, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(seen) + rest.decode("utf-8", "replace")
    assert proc.returncode == 130, output[-3000:]
    text = report.read_text(encoding="utf-8")
    assert "the run is interrupted (Ctrl-C)" in text
    rows = summary_rows(text)
    assert rows["vm.halt"][0] == "fail" and rows["vm.halt"][1].startswith("interrupted (Ctrl-C) while it ran"), rows
    for phase in ("vm.up", "snapshot.save", "snapshot.restore"):
        assert rows[phase][0] == "pass", (phase, rows[phase])
    assert rows["vm.up.after-halt"][0] == "skip"
    assert "| Stopping VM" in text[text.index("### vm.halt: fail"):text.index("### vm.up.after-halt")]
    lab_vm.invoke("vm.up")  # leave the lab running for the tests after this one
