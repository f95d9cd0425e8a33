"""T1: the real CLI on this machine (no VirtualBox): clear one-line failures, never a traceback."""
from __future__ import annotations


import pytest

from tests.support.env import need_binary
from tests.support.cli import one_line_error, run

pytestmark = pytest.mark.t1


def test_doctor_reports_virtualbox_missing_on_this_machine():
    need_binary("vagrant")
    out = run("doctor")
    assert out.returncode == 1
    provider = next(line for line in out.stdout.splitlines() if line.startswith("provider"))
    assert provider.split()[1] == "fail" and "VirtualBox is not installed" in provider
    vagrant_row = next(line for line in out.stdout.splitlines() if line.startswith("vagrant "))
    assert vagrant_row.split()[1] == "pass"


def test_doctor_json_is_machine_readable():
    import json
    import platform

    out = run("doctor", "--json")
    data = json.loads(out.stdout)
    assert data["host"] == platform.node() and data["time"].endswith("+00:00")  # a room's reports told apart
    assert data["schema"] == "labkit-checks/1" and data["kind"] == "doctor"
    report = {r["title"]: r for r in data["checks"]}
    assert report["provider"]["status"] == "fail" and report["provider"]["fix"]
    assert {"architecture", "memory", "disk", "cpus", "bundle", "box", "host-only network"} <= set(report)


def test_main_command_fails_fast_and_clearly_without_virtualbox():
    need_binary("vagrant")
    out = run("lab")
    line = one_line_error(out)
    assert line.startswith("labkit: VirtualBox is not installed (no VBoxManage found)")
    assert "Fix: install VirtualBox" in line
    assert "✗ Checking prerequisites" in out.stdout
    assert "vm.up" in out.stdout and "not run" in out.stdout  # the timing summary still prints


@pytest.mark.parametrize("env, start", [
    ({"LABKIT_VM__CPUS": "1"}, "labkit: vm.cpus = 1 is too few"),
    ({"LABKIT_NODES__0__IP": "10.1.2.3"}, "labkit: nodes.0.ip 10.1.2.3 is outside VirtualBox's host-only range"),
    ({"LABKIT_PROVIDER": "hyperv"}, "labkit: provider 'hyperv' is not supported"),
])
def test_bad_settings_stop_vm_up_before_anything_starts(env, start):
    out = run("vm.up", **env)
    assert one_line_error(out).startswith(start)
    assert "Checking prerequisites" not in out.stdout  # rejected before any step


def test_vagrant_errors_become_one_line():
    need_binary("vagrant")
    line = one_line_error(run("vm.status"))
    assert line == ("labkit: vagrant status failed: VirtualBox is not installed. "
                    "Fix: install VirtualBox (invoke doctor names the version your Vagrant accepts), "
                    "or set LABKIT_PROVIDER=libvirt on Linux")


def test_bad_snapshot_name_is_refused_before_vagrant_runs():
    line = one_line_error(run("vm.snapshot", "--save", "my snapshot!"))
    assert "'my snapshot!' is not a usable snapshot name" in line


def test_unknown_node_is_refused():
    assert "there is no node named 'worker-7'" in one_line_error(run("vm.ssh", "--node", "worker-7"))


@pytest.mark.parametrize("args, option", [(("bundle.serve", "--port", "abc"), "--port"),
                                          (("bundle.fetch", "--workers", "4x"), "--workers"),
                                          (("bundle.lock", "--workers", "-8"), "--workers")])
def test_a_number_option_that_is_not_a_number_is_one_line(args, option):
    # Invoke would parse these with int() and end in a traceback before any task code runs.
    line = one_line_error(run(*args))
    assert line == (f"labkit: {option} '{args[2]}' is not a whole number. "
                    "Fix: give one without a sign or unit (the task's --help says what it means)")
