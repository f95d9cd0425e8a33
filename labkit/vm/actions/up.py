"""A node up: `vagrant up`, created if new (provisioned offline from the bundle), started if stopped."""
from __future__ import annotations

from typing import Optional

from labkit import vm
from labkit.errors import LabkitError
from labkit.steps import Step


def up_args(s, node: str, new: bool, provision: Optional[list]) -> list[str]:
    """vm.up leaves provisioning to Vagrant (every step, on a VM's first up); a student's VM gets only `provision`."""
    if provision is None:
        return []
    if not new:
        return ["--no-provision"]
    return ["--provision-with", ",".join(provision)] if provision else ["--no-provision"]


def _provisioning(provision: Optional[list]) -> str:
    if provision is None:
        return "every provision/ step when created"
    return f"only {', '.join(provision)} when created" if provision else "no provisioning"


class UpNode(Step):
    def __init__(self, s, node, found, provision: Optional[list] = None):
        self.node, self.found, self.provision = node, found, provision
        # The machine id file says whether Vagrant holds this VM, for the dry-run and the run alike.
        verb = "Starting" if vm.created(s, node.name) else "Creating"
        self.title = f"{verb} VM {node.name} ({s.provider}, {s.box}, {node.ip})"

    def describe(self, ctx) -> list[str]:
        s, name = ctx.settings, self.node.name
        new = " ".join(["vagrant up", name, f"--provider={s.provider}", *up_args(s, name, True, self.provision)])
        old = " ".join(["vagrant up", name, f"--provider={s.provider}", *up_args(s, name, False, self.provision)])
        return [f"laptop: skipped if it runs; else {new} (provisioning: {_provisioning(self.provision)})"
                + (f", or {old} for a VM that exists" if old != new else "")]

    def run(self, ctx, st) -> None:
        s, name, vg = ctx.settings, self.node.name, ctx.vagrant
        state = self.found.state(ctx, name)
        if state == "running":
            st.skip("already running")
            return
        vm.forget_ssh(s, name)
        s.bundle_dir.mkdir(parents=True, exist_ok=True)
        if state == "not_created":
            self.found.new.add(name)
        try:
            vg.stream(st, "up", name, f"--provider={s.provider}", *up_args(s, name, state == "not_created", self.provision))
        except LabkitError:
            # On VirtualBox, a bundle share that does not mount (the box's Guest Additions do not fit this
            # VirtualBox: the 2021 xenial box has 5.x ones) is left to the next step, CopyBundleIfUnshared.
            if s.provider != "virtualbox" or "vboxsf" not in vg.last_output:
                raise
            self.found.unmounted.add(name)
            st.note = "the bundle's shared folder did not mount"
        self.found.states[name] = "running"


class UpInParallel(Step):
    """One `vagrant up` for every node: Vagrant brings them up at once where the provider allows it
    (vagrant-libvirt does, VirtualBox does not). Vagrant prefixes each line with the node's name."""

    def __init__(self, s, nodes, found, provision: Optional[list] = None):
        self.nodes, self.found, self.provision = nodes, found, provision
        self.title = f"Creating/starting VMs {', '.join(n.name for n in nodes)} in parallel ({s.provider}, {s.box})"

    def describe(self, ctx) -> list[str]:
        s = ctx.settings
        return [f"laptop: vagrant up --parallel --provider={s.provider} NODE... for those not running "
                f"(provisioning: {_provisioning(self.provision)})"]

    def run(self, ctx, st) -> None:
        s, vg = ctx.settings, ctx.vagrant
        todo = [n for n in self.nodes if self.found.state(ctx, n.name) != "running"]
        if not todo:
            st.skip("already running")
            return
        for n in self.nodes:
            if n not in todo:
                st.log(f"{n.name}: already running")
        for n in todo:
            vm.forget_ssh(s, n.name)
        s.bundle_dir.mkdir(parents=True, exist_ok=True)
        new = all(self.found.state(ctx, n.name) == "not_created" for n in todo)
        vg.stream(st, "up", "--parallel", f"--provider={s.provider}", *up_args(s, "", new, self.provision),
                  *(n.name for n in todo))
        for n in todo:
            self.found.states[n.name] = vg.status(n.name)
            st.log(f"{n.name}: {self.found.states[n.name]} on {n.ip}")
