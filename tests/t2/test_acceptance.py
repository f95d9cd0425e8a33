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


def test_acceptance_reports_the_vm_phases_and_why_kubernetes_failed(lab_vm, tmp_path):
    report = tmp_path / "report.md"
    out = lab_vm.invoke("acceptance", "--output", str(report), timeout=3600)
    assert out.returncode == 1, "a run whose cluster.init failed must not exit 0"
    assert f"Report written to {report}: send this file back." in strip_ansi(out.stdout)
    text = report.read_text(encoding="utf-8")
    summary = text[text.index("## Summary"):]
    rows = {m[1]: (m[2], m[3]) for m in re.finditer(r"^\| (\S+) \| (passed|failed|skipped) \| [\d.]+s \| (.*) \|$",
                                                    summary, re.M)}
    for phase in ("vm.up", "snapshot.save", "snapshot.restore", "vm.halt", "vm.up.after-halt"):
        assert rows[phase][0] == "passed", (phase, rows[phase])
    node = lab_vm.settings.master.name
    assert rows["cluster.init"] == ("failed", f"kubeadm on {node} is not installed, settings want "
                                              f"{lab_vm.settings.versions['kubernetes']}")
    for phase in ("app.deploy", "verify", "verify.after-restore", "verify.after-reboot"):
        assert rows[phase] == ("skipped", "needs cluster.init, which failed"), phase
    assert "vm.destroy" not in rows
    # the failure carries its hint and the VM's logs; the laptop's facts are there
    init = text[text.index("### cluster.init: failed"):text.index("### app.deploy")]
    assert "- hint: run invoke vm.provision --step kubernetes" in init
    assert "VM: docker journal" in init and "VM: dmesg tail" in init
    assert "| provider | libvirt |" in text and f"| box | {lab_vm.settings.box}" in text
    assert re.search(r"\| bundle lock \| test-bundle\.lock\.yaml sha256 [0-9a-f]{64} \|", text)
    # vm.up's status lines became its steps
    up = text[text.index("### vm.up: passed"):text.index("### cluster.init")]
    assert "| Checking prerequisites |" in up or f"| Starting VM {node} | skipped (already running) |" in up
    # and the lab is still there
    assert lab_vm.ssh("test -e /etc/labkit/resolv.conf").returncode == 0
