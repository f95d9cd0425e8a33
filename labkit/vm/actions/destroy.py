"""A node deleted with its disks (the box and the bundle stay, so vm.up is offline again)."""
from __future__ import annotations

from labkit import vm
from labkit.steps import Step


class DestroyNode(Step):
    def __init__(self, node):
        self.node = node
        self.title = f"Destroying VM {node.name}"

    def describe(self, ctx) -> list[str]:
        s, name = ctx.settings, self.node.name
        lines = [f"laptop: forget its cached SSH facts; vagrant destroy --force {name} if Vagrant has it"
                 + (", else remove a libvirt domain of this checkout that Vagrant lost track of"
                    if s.provider == "libvirt" else "")]
        if self.node.role == "master":
            lines.append(f"laptop: delete {s.state_dir / 'kubeconfig'} (it pointed at the old cluster)")
        return lines

    def run(self, ctx, st) -> None:
        s, name = ctx.settings, self.node.name
        vm.forget_ssh(s, name)
        if ctx.vm_state(name) != "not_created":
            ctx.vagrant.stream(st, "destroy", "--force", name)
        elif not remove_leftover(s, name, st):
            st.skip("nothing to destroy")
            return
        if self.node.role == "master":
            (s.state_dir / "kubeconfig").unlink(missing_ok=True)  # it pointed at the old cluster


def remove_leftover(s, node: str, st) -> bool:
    """A libvirt domain of this checkout that Vagrant lost track of (its .vagrant is gone): remove it."""
    if s.provider != "libvirt":
        return False
    from labkit import libvirt

    name = libvirt.domain_name(s.root, node)
    if not libvirt.exists(name):
        return False
    st.log(f"libvirt still has {name} from a run whose .vagrant state is gone: removing it")
    libvirt.remove(name)
    return True
