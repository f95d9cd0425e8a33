"""T0: the bundle copy in the VM is refreshed before provisioning, and a VirtualBox share that does not
mount becomes a copy over SSH (Vagrant stand-in: VirtualBox cannot run here; the copy itself runs for
real against an sshd in tests/t1/test_bundle_over_ssh.py; T2 runs vm.provision on libvirt)."""
from __future__ import annotations

import pytest
from invoke import Exit

from labkit import vm as vmfacts
from labkit.tasks import vm
from labkit import settings as settings_mod
from tests.support.vagrant import run
from tests.support.vagrant import MOUNT_FAILED, Vagrant


@pytest.fixture
def ssh_copies(monkeypatch):
    from labkit.bundle import over_ssh

    copied = []
    monkeypatch.setattr(over_ssh, "copy", lambda s, node, log: copied.append(node))
    return copied


def test_a_share_that_does_not_mount_becomes_a_copy_over_ssh(project, monkeypatch, capsys, ssh_copies):
    fake = Vagrant({"ubuntu": "not_created"}, MOUNT_FAILED)
    run(project, monkeypatch, fake, vm.up, {})
    # no rsync: Windows has none; the copy goes over the kit's SSH connection, then provisioning runs
    assert fake.calls == [("up", "ubuntu", "--provider=virtualbox"), ("provision", "ubuntu")]
    assert ssh_copies == ["ubuntu"]
    assert vmfacts.bundle_copied(settings_mod.load(project, {}), "ubuntu").exists()  # the Vagrantfile reads it
    out = capsys.readouterr()
    assert "shared folder did not mount" in out.out + out.err and "over SSH" in out.out + out.err


def test_destroy_forgets_the_copy_so_a_new_vm_tries_the_shared_folder_again(project, monkeypatch):
    marker = vmfacts.bundle_copied(settings_mod.load(project, {}), "ubuntu")
    marker.parent.mkdir(parents=True)
    for state in ("running", "not_created"):
        marker.touch()
        run(project, monkeypatch, Vagrant({"ubuntu": state}), vm.destroy, {})
        assert not marker.exists()


def test_other_up_failures_are_not_mistaken_for_it(project, monkeypatch):
    fake = Vagrant({"ubuntu": "not_created"}, "Timed out while waiting for the machine to boot.")
    with pytest.raises(Exit) as info:
        run(project, monkeypatch, fake, vm.up, {})
    assert "Timed out while waiting" in str(info.value.message)
    assert fake.calls == [("up", "ubuntu", "--provider=virtualbox")]
    assert not vmfacts.bundle_copied(settings_mod.load(project, {}), "ubuntu").exists()


@pytest.mark.parametrize("provider, copied, rsyncs, over_ssh", [("libvirt", False, True, False),
                                                                 ("virtualbox", False, False, False),
                                                                 ("virtualbox", True, False, True)])
def test_provision_refreshes_a_copied_bundle_first(project, monkeypatch, ssh_copies, provider, copied, rsyncs, over_ssh):
    if copied:
        marker = vmfacts.bundle_copied(settings_mod.load(project, {}), "ubuntu")
        marker.parent.mkdir(parents=True)
        marker.touch()
    fake = Vagrant({"ubuntu": "running"})
    run(project, monkeypatch, fake, vm.provision, {"LABKIT_PROVIDER": provider}, step="base")
    assert fake.calls == ([("rsync", "ubuntu")] if rsyncs else []) + [("provision", "ubuntu", "--provision-with", "base")]
    assert ssh_copies == (["ubuntu"] if over_ssh else [])
