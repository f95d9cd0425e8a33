"""A stand-in for Vagrant (VirtualBox cannot run here) and `run`, which calls a vm task with it."""
from __future__ import annotations

import os

from invoke import Config, Context

from labkit.errors import LabkitError
from labkit.tasks import vm
from labkit.vm.actions import preflight


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


class FakeVagrant:
    def __init__(self, states, snapshots=None):
        self.states, self.snaps, self.calls = dict(states), snapshots or {}, []

    def status(self, node):
        return self.states[node]

    def snapshots(self, node):
        return list(self.snaps.get(node, []))

    def stream(self, step, *args):
        self.calls.append(args)


def run(project, monkeypatch, fake, task, env, **kwargs):
    for key in [k for k in os.environ if k.startswith("LABKIT_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(vm, "vagrant_for", lambda s: fake)
    # doctor's checks need VirtualBox, which cannot run here: the states are what preflight returns
    monkeypatch.setattr(preflight, "preflight", lambda s, vg, nodes, log: {n.name: fake.status(n.name) for n in nodes})
    task(Context(Config(overrides={"labkit": {"root": str(project)}})), **kwargs)


NEW = {"ubuntu": "not_created", "worker-1": "not_created", "worker-2": "not_created"}


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
