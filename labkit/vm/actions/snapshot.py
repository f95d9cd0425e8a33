"""Snapshots of every node: checked on all nodes first (a cluster is restored whole or not at all), then each."""
from __future__ import annotations

from typing import Optional

from labkit import vm
from labkit.errors import LabkitError
from labkit.steps import Step


class CheckSnapshots(Step):
    def __init__(self, nodes, found, restore: Optional[str] = None):
        self.nodes, self.found, self.restore = nodes, found, restore
        self.title = ("Checking that every VM has snapshot " + restore) if restore else "Checking that every VM exists"

    def describe(self, ctx) -> list[str]:
        return [f"laptop: vagrant status and vagrant snapshot list of {', '.join(n.name for n in self.nodes)}; "
                "stop before any change if one does not exist" + (" or lacks it" if self.restore else "")]

    def run(self, ctx, st) -> None:
        for n in self.nodes:
            if self.found.state(ctx, n.name) == "not_created":
                raise LabkitError(f"{n.name} does not exist yet", "run invoke vm.up first")
            have = self.found.snapshots_of(ctx, n.name)
            if self.restore and self.restore not in have:
                raise LabkitError(f"{n.name} has no snapshot '{self.restore}'",
                                  "use one of: " + ", ".join(have) if have else
                                  "save one first: invoke vm.snapshot --save fresh")


class SaveSnapshot(Step):
    def __init__(self, node, name: str, found):
        self.node, self.name, self.found = node, name, found
        self.title = f"Saving snapshot {name} of {node.name}"

    def describe(self, ctx) -> list[str]:
        n = self.node.name
        return [f"laptop: vagrant snapshot delete {n} {self.name} if it exists (save means now), "
                f"then vagrant snapshot save {n} {self.name}"]

    def run(self, ctx, st) -> None:
        n, vg = self.node.name, ctx.vagrant
        if self.name in self.found.snapshots_of(ctx, n):
            vg.stream(st, "snapshot", "delete", n, self.name)  # save means "now", not "the old one"
        vg.stream(st, "snapshot", "save", n, self.name)


class RestoreSnapshot(Step):
    def __init__(self, node, name: str):
        self.node, self.name = node, name
        self.title = f"Restoring {node.name} to snapshot {name}"

    def describe(self, ctx) -> list[str]:
        return [f"laptop: vagrant snapshot restore --no-provision {self.node.name} {self.name} (it starts the VM)"]

    def run(self, ctx, st) -> None:
        vm.forget_ssh(ctx.settings, self.node.name)
        ctx.vagrant.stream(st, "snapshot", "restore", "--no-provision", self.node.name, self.name)


class DeleteSnapshot(Step):
    def __init__(self, node, name: str, found):
        self.node, self.name, self.found = node, name, found
        self.title = f"Deleting snapshot {name} of {node.name}"

    def describe(self, ctx) -> list[str]:
        return [f"laptop: vagrant snapshot delete {self.node.name} {self.name}; skipped if there is none"]

    def run(self, ctx, st) -> None:
        if self.name not in self.found.snapshots_of(ctx, self.node.name):
            st.skip("no such snapshot")
            return
        ctx.vagrant.stream(st, "snapshot", "delete", self.node.name, self.name)
