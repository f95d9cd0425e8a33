"""A VirtualBox node whose bundle share did not mount gets the bundle as a copy instead, then its provisioning.

The marker (labkit.vm.bundle_copied) makes the Vagrantfile's bundle_copied? give it the rsync folder libvirt nodes
have, and tells vm.provision to refresh the copy first.
"""
from __future__ import annotations

from typing import Optional

from labkit import vm
from labkit.steps import Step


class CopyBundleIfUnshared(Step):
    def __init__(self, node, found, provision: Optional[list] = None):
        self.node, self.found, self.provision = node, found, provision
        self.title = f"Copying the bundle into {node.name} if its shared folder did not mount"

    def provision_argv(self, new: bool) -> list[str]:
        """What the failed `vagrant up` did not get to: vm.up's full provisioning, a student's new VM its steps."""
        if self.provision is None:
            return ["provision", self.node.name]
        if new and self.provision:
            return ["provision", self.node.name, "--provision-with", ",".join(self.provision)]
        return []

    def describe(self, ctx) -> list[str]:
        name = self.node.name
        then = " ".join(["vagrant", *self.provision_argv(True)]) if self.provision_argv(True) else "no provisioning"
        return [f"laptop: skipped if the share mounted; else mark {vm.bundle_copied(ctx.settings, name)}, "
                f"vagrant rsync {name}, then {then}" + (" (if the VM was new)" if self.provision else "")]

    def run(self, ctx, st) -> None:
        name, vg = self.node.name, ctx.vagrant
        if name not in self.found.unmounted:
            st.skip("no mount failed")
            return
        st.log("the VirtualBox shared folder did not mount (the box's Guest Additions do not fit this VirtualBox): "
               "copying the bundle into the VM with rsync instead")
        marker = vm.bundle_copied(ctx.settings, name)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        vg.stream(st, "rsync", name)
        argv = self.provision_argv(name in self.found.new)
        if argv:
            vg.stream(st, *argv)
