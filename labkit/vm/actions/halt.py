"""A node shut down gracefully (vagrant halt); vm.up starts it again where it was."""
from __future__ import annotations

from labkit import vm
from labkit.steps import Step


class HaltNode(Step):
    def __init__(self, node):
        self.node = node
        self.title = f"Stopping VM {node.name}"

    def describe(self, ctx) -> list[str]:
        return [f"laptop: skipped unless it runs; else vagrant halt {self.node.name}"]

    def run(self, ctx, st) -> None:
        name = self.node.name
        state = ctx.vm_state(name)
        if state == "not_created":
            st.skip("not created")
        elif state != "running":
            st.skip(f"already stopped ({state})")
        else:
            vm.forget_ssh(ctx.settings, name)
            ctx.vagrant.stream(st, "halt", name)
