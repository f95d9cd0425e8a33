"""T2: the VM lifecycle through the project's own tasks, on a real VM (runs last: it destroys the VM)."""
from __future__ import annotations

import pytest

from labkit import libvirt
from tests.support.env import REPO
from tests.support.vm import strip_ansi, virsh

pytestmark = pytest.mark.t2


def state(vm) -> str:
    out = vm.invoke("vm.status")
    assert out.returncode == 0
    row = next(line for line in out.stdout.splitlines() if line.startswith(vm.settings.master.name + " "))
    return row.split()[2]


def test_up_added_the_box_from_the_bundle_and_created_the_vm(lab_vm):
    out = strip_ansi(lab_vm.up_output)
    assert "✓ Adding box labkit/debian-test from the bundle" in out
    assert f"✓ Creating VM {lab_vm.settings.master.name} (libvirt, labkit/debian-test" in out
    assert state(lab_vm) == "running"


def test_the_libvirt_domain_has_this_checkouts_name(lab_vm):
    # The Vagrantfile's prefix and labkit/libvirt.py must agree, or vm.destroy could not find leftovers.
    root = lab_vm.settings.root
    assert root != REPO and (root / ".vagrant").is_dir()  # the suite's own copy of the project
    assert libvirt.domain_name(root, lab_vm.settings.master.name) in virsh("list", "--name").stdout.split()


def default_routes(lab_vm) -> list[str]:
    out = lab_vm.ssh("ip route show default")
    assert out.returncode == 0
    return out.stdout.splitlines()


def test_the_vm_has_its_name_and_host_only_ip_and_no_route_out(lab_vm):
    node = lab_vm.settings.master
    out = lab_vm.ssh("hostname; ip -4 -o addr show")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0] == node.name
    assert any(f"inet {node.ip}/24" in line for line in lines)
    # the test VM is offline: its only default route is provisioning's dummy one
    assert [r.split()[:3] for r in default_routes(lab_vm)] == [["default", "dev", "labkit0"]]


def test_up_on_a_running_vm_changes_nothing(lab_vm):
    out = lab_vm.invoke("vm.up")
    assert out.returncode == 0
    assert "(already running)" in out.stdout
    assert "==>" not in out.stdout  # Vagrant was not asked to do anything


def test_ssh_command_passes_output_and_exit_code(lab_vm):
    ok = lab_vm.ssh("echo hello-from-$(hostname)")
    assert ok.returncode == 0 and ok.stdout.strip() == f"hello-from-{lab_vm.settings.master.name}"
    assert lab_vm.ssh("exit 7").returncode == 7


def test_snapshot_save_list_restore(lab_vm):
    assert lab_vm.invoke("vm.snapshot", "--save", "fresh").returncode == 0
    listed = lab_vm.invoke("vm.snapshot", "--list")
    assert "fresh" in listed.stdout.split()
    assert lab_vm.ssh("touch /home/vagrant/after-fresh").returncode == 0
    assert lab_vm.invoke("vm.snapshot", "--restore", "fresh").returncode == 0
    assert lab_vm.ssh("test -e /home/vagrant/after-fresh").returncode == 1  # gone with the restore
    missing = lab_vm.invoke("vm.snapshot", "--restore", "no-such-snapshot")
    assert missing.returncode == 1
    assert "has no snapshot 'no-such-snapshot'" in missing.stderr and "fresh" in missing.stderr


def test_halt_then_up_again(lab_vm):
    assert lab_vm.ssh("touch /home/vagrant/survives-halt").returncode == 0
    assert lab_vm.invoke("vm.halt").returncode == 0
    assert state(lab_vm) in ("poweroff", "shutoff")
    again = lab_vm.invoke("vm.halt")
    assert again.returncode == 0 and "already stopped" in again.stdout
    up = lab_vm.invoke("vm.up")
    assert up.returncode == 0 and f"Starting VM {lab_vm.settings.master.name}" in up.stdout
    assert state(lab_vm) == "running"
    assert lab_vm.ssh("test -e /home/vagrant/survives-halt").returncode == 0
    assert [r.split()[:3] for r in default_routes(lab_vm)] == [["default", "dev", "labkit0"]]  # a unit, not a one-off


def test_destroy_then_destroy_again_is_a_no_op(lab_vm):
    assert lab_vm.invoke("vm.destroy").returncode == 0
    assert state(lab_vm) == "not_created"
    again = lab_vm.invoke("vm.destroy")
    assert again.returncode == 0 and "(nothing to destroy)" in again.stdout


def test_a_leftover_domain_stops_up_in_one_line_and_destroy_removes_it(lab_vm, tmp_path):
    # What a fresh clone meets when libvirt still holds a VM of the same name whose .vagrant is gone.
    name = libvirt.domain_name(lab_vm.settings.root, lab_vm.settings.master.name)
    xml = tmp_path / "leftover.xml"
    xml.write_text(f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
                   "<os><type arch='x86_64'>hvm</type></os></domain>")
    assert virsh("define", str(xml)).returncode == 0
    try:
        up = lab_vm.invoke("vm.up")
        assert up.returncode == 1
        assert up.stderr.strip().splitlines()[-1] == (
            "labkit: vagrant up failed: libvirt still has this VM from a run whose .vagrant state is gone. "
            "Fix: run invoke vm.destroy (it removes that leftover VM), then invoke vm.up")
        gone = lab_vm.invoke("vm.destroy")
        assert gone.returncode == 0 and f"libvirt still has {name}" in gone.stdout
        assert virsh("dominfo", name).returncode != 0
        assert "(nothing to destroy)" in lab_vm.invoke("vm.destroy").stdout
    finally:
        virsh("undefine", name)

