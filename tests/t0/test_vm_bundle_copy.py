"""T0: the bundle copy in the VM is refreshed before provisioning, and a VirtualBox share that does not
mount becomes a copy (Vagrant stand-in: VirtualBox cannot run here; T2 runs vm.provision on libvirt)."""
from __future__ import annotations

import pytest
from invoke import Exit

from labkit.errors import LabkitError
from labkit import vm as vmfacts
from labkit.tasks import vm
from labkit import settings as settings_mod
from tests.t0.test_vm_nodes import FakeVagrant, project, run  # noqa: F401 (fixture)

# What Vagrant 2.x prints when the box's Guest Additions cannot mount the share (its
# VirtualBoxMountFailed error, templates/locales/en.yml), with the guest's own mount error.
MOUNT_FAILED = """==> ubuntu: Mounting shared folders...
    ubuntu: /opt/labkit/bundle => /home/student/labkit/bundle
Vagrant was unable to mount VirtualBox shared folders. This is usually
because the filesystem "vboxsf" is not available. This filesystem is
made available via the VirtualBox Guest Additions and kernel module.
Please verify that these guest additions are properly installed in the
guest. This is not a bug in Vagrant and is usually caused by a faulty
Vagrant box. For context, the command attempted was:

mount -t vboxsf -o ro,uid=1000,gid=1000 opt_labkit_bundle /opt/labkit/bundle

The error output from the command was:

/sbin/mount.vboxsf: mounting failed with the error: No such device"""


class Vagrant(FakeVagrant):
    """Fails `up` with `failure` (once), like Vagrant after booting a VM whose share will not mount."""

    def __init__(self, states, failure=""):
        super().__init__(states)
        self.failure, self.last_output = failure, ""

    def stream(self, step, *args):
        super().stream(step, *args)
        if args[0] == "up" and self.failure:
            self.last_output, self.failure = self.failure, ""
            raise LabkitError("vagrant up failed: " + self.last_output.splitlines()[-1], "read Vagrant's output above")


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
