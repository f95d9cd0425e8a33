"""What the steps of one run learn about the VMs, each fact asked of Vagrant once and shared (as join's Discovery)."""
from __future__ import annotations


class Found:
    def __init__(self):
        self.states: dict = {}      # node → Vagrant's state, as last seen (preflight asks all at once)
        self.snapshots: dict = {}   # node → snapshot names
        self.unmounted: set = set()  # VirtualBox nodes whose bundle share did not mount
        self.new: set = set()        # nodes created by this run

    def state(self, ctx, node: str) -> str:
        if node not in self.states:
            self.states[node] = ctx.vm_state(node)
        return self.states[node]

    def snapshots_of(self, ctx, node: str) -> list:
        if node not in self.snapshots:
            self.snapshots[node] = ctx.vagrant.snapshots(node)
        return self.snapshots[node]
