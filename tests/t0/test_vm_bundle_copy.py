"""T0: the bundle copy in the VM is refreshed before provisioning, and a VirtualBox share that does not
mount becomes a copy (Vagrant stand-in: VirtualBox cannot run here; T2 runs vm.provision on libvirt)."""
from __future__ import annotations

import pytest
from invoke import Exit

from labkit import vm as vmfacts
from labkit.tasks import vm
from labkit import settings as settings_mod
from tests.support.vagrant import run
from tests.support.vagrant import MOUNT_FAILED, Vagrant


def test_a_share_that_does_not_mount_becomes_an_rsync_copy(project, monkeypatch, capsys):
    fake = Vagrant({"ubuntu": "not_created"}, MOUNT_FAILED)
    run(project, monkeypatch, fake, vm.up, {})
    assert fake.calls == [("up", "ubuntu", "--provider=virtualbox"), ("rsync", "ubuntu"), ("provision", "ubuntu")]
    assert vmfacts.bundle_copied(settings_mod.load(project, {}), "ubuntu").exists()  # the Vagrantfile reads it
    out = capsys.readouterr()
    assert "shared folder did not mount" in out.out + out.err and "rsync" in out.out + out.err


def test_other_up_failures_are_not_mistaken_for_it(project, monkeypatch):
    fake = Vagrant({"ubuntu": "not_created"}, "Timed out while waiting for the machine to boot.")
    with pytest.raises(Exit) as info:
        run(project, monkeypatch, fake, vm.up, {})
    assert "Timed out while waiting" in str(info.value.message)
    assert fake.calls == [("up", "ubuntu", "--provider=virtualbox")]
    assert not vmfacts.bundle_copied(settings_mod.load(project, {}), "ubuntu").exists()


@pytest.mark.parametrize("provider, copied, syncs", [("libvirt", False, True), ("virtualbox", False, False),
                                                     ("virtualbox", True, True)])
def test_provision_refreshes_a_copied_bundle_first(project, monkeypatch, provider, copied, syncs):
    if copied:
        marker = vmfacts.bundle_copied(settings_mod.load(project, {}), "ubuntu")
        marker.parent.mkdir(parents=True)
        marker.touch()
    fake = Vagrant({"ubuntu": "running"})
    run(project, monkeypatch, fake, vm.provision, {"LABKIT_PROVIDER": provider}, step="base")
    assert fake.calls == ([("rsync", "ubuntu")] if syncs else []) + [("provision", "ubuntu", "--provision-with", "base")]
