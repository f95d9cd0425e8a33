"""T0: vm.up, vm.provision, vm.halt, vm.destroy and vm.snapshot as plans: --dry-run prints exactly the steps a real run
executes (the tasks themselves, against the Vagrant stand-in of test_vm_nodes: VirtualBox cannot run here)."""
from __future__ import annotations

import pytest

from labkit.tasks import vm
from tests import dryrun
from tests.t0.test_vm_bundle_copy import MOUNT_FAILED, Vagrant
from tests.t0.test_vm_nodes import NEW, FakeVagrant, project, run  # noqa: F401 (fixture)


def dry_and_real(project, monkeypatch, capsys, fake, task, env, **kwargs):
    run(project, monkeypatch, fake, task, env, dry_run=True, **kwargs)
    dry = capsys.readouterr().out
    assert fake.calls == []  # the dry run changed nothing
    run(project, monkeypatch, fake, task, env, **kwargs)
    return dryrun.planned(dry), dryrun.ran(capsys.readouterr().out)


@pytest.mark.parametrize("env, states, box, first, steps", [
    ({}, {"ubuntu": "not_created"}, "ubuntu/xenial64", "Creating VM ubuntu (virtualbox, ubuntu/xenial64, 192.168.56.10)",
     4),
    ({"LABKIT_WORKERS": "2"}, NEW, "ubuntu/xenial64", "Creating VM ubuntu (virtualbox, ubuntu/xenial64, 192.168.56.10)",
     8),
    ({"LABKIT_WORKERS": "2", "LABKIT_PROVIDER": "libvirt"}, dict(NEW, ubuntu="running"), "generic/ubuntu1604",
     "Creating/starting VMs ubuntu, worker-1, worker-2 in parallel (libvirt, generic/ubuntu1604)", 3),
], ids=["one virtualbox VM", "three virtualbox VMs", "libvirt in parallel"])
def test_up_dry_run_lists_the_steps_the_run_executes(project, monkeypatch, capsys, env, states, box, first, steps):
    planned, ran = dry_and_real(project, monkeypatch, capsys, FakeVagrant(states), vm.up, env)
    assert planned == ran and len(planned) == steps
    assert planned[:3] == ["Checking prerequisites", f"Adding box {box} from the bundle", first]


def test_a_vm_vagrant_holds_is_started_not_created(project, monkeypatch, capsys):
    machine = project / ".vagrant" / "machines" / "ubuntu" / "virtualbox"
    machine.mkdir(parents=True)
    (machine / "id").write_text("0f6f5f0e-5d1c-4c5e-9d57-1f0c8a1b2c3d")  # VirtualBox's VM UUID, as Vagrant keeps it
    planned, ran = dry_and_real(project, monkeypatch, capsys, FakeVagrant({"ubuntu": "poweroff"}), vm.up, {})
    assert planned == ran and planned[2] == "Starting VM ubuntu (virtualbox, ubuntu/xenial64, 192.168.56.10)"


def test_the_shared_folder_fallback_is_one_step_of_the_plan(project, monkeypatch, capsys):
    planned, ran = dry_and_real(project, monkeypatch, capsys, Vagrant({"ubuntu": "not_created"}, MOUNT_FAILED), vm.up, {})
    assert planned == ran and planned[-1] == "Copying the bundle into ubuntu if its shared folder did not mount"


@pytest.mark.parametrize("task, kwargs, calls", [
    (vm.provision, {"step": "base"}, [("provision", "ubuntu", "--provision-with", "base")]),
    (vm.halt, {}, [("halt", "ubuntu")]),
    (vm.destroy, {}, [("destroy", "--force", "ubuntu")]),
    (vm.snapshot, {"restore": "fresh"}, [("snapshot", "restore", "--no-provision", "ubuntu", "fresh")]),
    (vm.snapshot, {"save": "fresh"}, [("snapshot", "delete", "ubuntu", "fresh"), ("snapshot", "save", "ubuntu", "fresh")]),
    (vm.snapshot, {"delete": "fresh"}, [("snapshot", "delete", "ubuntu", "fresh")]),
], ids=["provision", "halt", "destroy", "restore", "save", "delete"])
def test_halt_destroy_and_snapshot_dry_runs_list_the_steps_the_runs_execute(project, monkeypatch, capsys, task,
                                                                          kwargs, calls):
    fake = FakeVagrant({"ubuntu": "running"}, {"ubuntu": ["fresh"]})
    planned, ran = dry_and_real(project, monkeypatch, capsys, fake, task, {}, **kwargs)
    assert planned == ran and len(planned) >= 1
    assert fake.calls == calls
