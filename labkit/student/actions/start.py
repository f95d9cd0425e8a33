"""The VM at the start of section N: checked to be exactly there before it is saved as snapshot section-N,
and restored from that snapshot on the next section.start N."""
from __future__ import annotations

from labkit import vagrant
from labkit.errors import LabkitError
from labkit.steps import Step
from labkit.student import snapshots, workdir
from labkit.student.sections import want_for
from labkit.student.progress import DONE
from labkit.vm.actions.snapshot import RestoreSnapshot, SaveSnapshot


class AtStartOf(Step):
    def __init__(self, number: int, judge):
        self.number, self.judge = number, judge
        self.title = f"Checking that the VM is at the start of section {number}"

    def describe(self, ctx) -> list[str]:
        done = f"sections 1-{self.number - 1} done, " if self.number > 1 else ""
        return [f"{ctx.settings.master.name}: {done}section {self.number} not done (else no snapshot is saved)"]

    def run(self, ctx, st) -> None:
        states = [self.judge.state(ctx, k) for k in range(1, self.number + 1)]
        n = self.number
        if states[-1].status == DONE:
            raise LabkitError(f"the VM is past the start of section {n}: section {n} is already done on it "
                              "(the kit's full provisioning, vm.up, does sections 1-2), so it is not saved as "
                              f"snapshot {snapshots.name(n)}",
                              f"for a VM at the start of section {n}: invoke vm.destroy, then invoke section.start {n}")
        earlier = next((s for s in states[:-1] if s.status != DONE), None)
        if earlier is not None:
            raise LabkitError(f"section {earlier.number} is not done, so the VM is not at the start of section {n}",
                              f"invoke section.check {earlier.number}")
        st.note = f"section {n}: {states[-1].status}"


class Prepare(Step):
    """One thing the kit puts on a student's VM besides the lab (labkit/student/workdir.py), left alone if there."""

    def __init__(self, s, index: int):
        self.index = index
        self.title = workdir.preparations(None, s, want_for(s))[index][0]

    def describe(self, ctx) -> list[str]:
        return [f"{ctx.settings.master.name}: written unless it is there (then left as it is)"]

    def run(self, ctx, st) -> None:
        s = ctx.settings
        title, put, fix = workdir.preparations(ctx.node(s.master.name), s, want_for(s))[self.index]
        res = put()
        if not res.ok:
            raise LabkitError(f"{title} failed on the VM: {(res.stderr or res.stdout).strip()[-200:]}", fix)
        if "kept" in res.stdout:
            st.skip("already there (left as it is)")


def preparations(s) -> list:
    return [Prepare(s, i) for i in range(len(workdir.preparations(None, s, want_for(s))))]


class SaveSection(SaveSnapshot):
    """The snapshot, then its record: the bundle and settings it was made from, and the VM it belongs to."""

    def __init__(self, node, number: int, found):
        super().__init__(node, snapshots.name(number), found)
        self.number = number

    def describe(self, ctx) -> list[str]:
        return super().describe(ctx) + [f"laptop: record the bundle, settings and VM id in "
                                        f"{snapshots.meta_file(ctx.settings, self.number)}"]

    def run(self, ctx, st) -> None:
        ctx.close()  # no SSH session of ours inside the snapshot
        super().run(ctx, st)
        snapshots.record(ctx.settings, self.number, machine=vagrant.machine_id(ctx.settings.root, self.node.name))


class RestoreSection(RestoreSnapshot):
    def __init__(self, node, number: int):
        super().__init__(node, snapshots.name(number))
        self.number = number

    def run(self, ctx, st) -> None:
        try:
            super().run(ctx, st)
        except LabkitError:
            # Vagrant 2.3.4 plugins/commands/snapshot/command/restore.rb: SnapshotNotFound, whose en.yml text is
            # "The snapshot name `NAME` was not found for the virtual machine `NODE`."
            if "was not found for the" not in ctx.vagrant.last_output:
                raise
            snapshots.meta_file(ctx.settings, self.number).unlink(missing_ok=True)  # its record is stale
            raise LabkitError(f"{self.node.name} has no snapshot {self.name} any more (it was deleted since "
                              "section.start saved it)", f"run invoke section.start {self.number} again: it builds "
                              f"the state and saves {self.name} anew")
