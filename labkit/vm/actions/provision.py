"""The provision/ scripts again on a running node (they skip what is done); a bundle that is a copy in the VM
(libvirt, or a VirtualBox share that did not mount) is refreshed first: `vagrant provision` does not sync it."""
from __future__ import annotations

from typing import Optional

from labkit import vm
from labkit.errors import LabkitError
from labkit.steps import Step


class ProvisionNode(Step):
    def __init__(self, node, step: Optional[str] = None):
        self.node, self.step = node, step
        self.title = f"Provisioning {node.name}" + (f" ({step})" if step else "")

    def argv(self) -> list[str]:
        return ["provision", self.node.name, *(["--provision-with", self.step] if self.step else [])]

    def describe(self, ctx) -> list[str]:
        name = self.node.name
        return [f"laptop: it must run; vagrant rsync {name} if the bundle is a copy in the VM, then vagrant "
                + " ".join(self.argv())]

    def run(self, ctx, st) -> None:
        name = self.node.name
        if ctx.vm_state(name) != "running":
            raise LabkitError(f"{name} is not running", "run invoke vm.up first")
        if vm.copies_bundle(ctx.settings, name):  # `vagrant provision` does not sync folders (vagrant-libvirt neither)
            ctx.vagrant.stream(st, "rsync", name)
        ctx.vagrant.stream(st, *self.argv())
