"""A section solved by the kit: skipped when the live lab says it is done, else its own steps, then checked again.

Each section's steps are in SECTION_STEPS (labkit/student/actions/__init__.py): exactly that section, so a
solve never does a later section's work, and never touches an object the student made (CreateMissing).
"""
from __future__ import annotations

from labkit.app import apply as apply_mod
from labkit.app import objects
from labkit.errors import LabkitError
from labkit.steps import Step
from labkit.student import live
from labkit.student.progress import DONE
from labkit.student.sections import SECTIONS, want_for


class _Within:
    """An inner step's view of its section's status line: its lines logged there, its "skip" one line more."""

    def __init__(self, st, title: str):
        self.st, self.title, self.note = st, title, ""

    def log(self, line: str) -> None:
        self.st.log(line)

    def skip(self, note: str) -> None:
        self.st.log(f"{self.title}: skipped ({note})")


class Judge:
    """The live lab's sections 1..upto, evaluated once for a plan and again only after the kit changed the lab."""

    def __init__(self, upto: int):
        self.upto, self.states = upto, None

    def state(self, ctx, number: int):
        if self.states is None:
            self.states = live.evaluate(ctx, self.upto)
        return self.states[number - 1]

    def changed(self) -> None:
        self.states = None


class SolveSection(Step):
    def __init__(self, number: int, inner: list, judge: Judge):
        self.number, self.inner, self.judge = number, inner, judge
        self.title = f"Solving section {number}: {SECTIONS[number].title}"

    def describe(self, ctx) -> list[str]:
        lines = [f"skipped if section {self.number} is done (what section.check {self.number} checks); else:"]
        for step in self.inner:
            lines.append(f"- {step.title}")
            lines += ["  " + line.replace("\n", "\n  ") for line in step.describe(ctx)]
        lines.append(f"then section {self.number} must check done")
        return lines

    def run(self, ctx, st) -> None:
        now = self.judge.state(ctx, self.number)
        if now.status == DONE:
            st.skip("already done")
            return
        if now.blocked_by is not None:
            raise LabkitError(f"section {self.number} cannot be solved before section {now.blocked_by}",
                              f"invoke section.solve {self.number} solves the earlier sections first")
        self.judge.changed()
        for step in self.inner:
            st.log(step.title)
            step.run(ctx, _Within(st, step.title))
        after = self.judge.state(ctx, self.number)
        if after.status != DONE:
            f = after.failure
            raise LabkitError(f"section {self.number} is still not done after solving it: {f.result.cause}",
                              f.result.fix)


class RunLabCommands(Step):
    """The section's own commands (sections.Solve.node), as root on the master."""

    def __init__(self, number: int):
        self.number = number
        self.title = f"The lab's commands of section {number}, run by the kit on the VM"

    def describe(self, ctx) -> list[str]:
        return [f"{ctx.settings.master.name}: sudo -n sh -c '{SECTIONS[self.number].solve.node(want_for(ctx.settings))}'"]

    def run(self, ctx, st) -> None:
        res = ctx.node(ctx.settings.master.name).run(
            ["sudo", "-n", "sh", "-c", SECTIONS[self.number].solve.node(want_for(ctx.settings))], timeout=300)
        if not res.ok:
            raise LabkitError(f"section {self.number}'s commands failed on the VM: "
                              f"{(res.stderr or res.stdout).strip()[-200:]}",
                              f"run invoke section.check {self.number} to see the cause")


class CreateMissing(Step):
    """The lab's objects of one section, each created only if no object of its kind and name exists: one the
    student made stays as it is (a Pod's spec cannot change anyway, and a solve never replaces their work)."""

    def __init__(self, objs: list[dict]):
        self.objs = objs
        self.title = ("Creating " + ", ".join(objects.ref(o) for o in objs)
                      + (" unless they exist" if len(objs) > 1 else " unless it exists"))

    def describe(self, ctx) -> list[str]:
        return ["create each one missing, as this YAML (one that exists is left alone):",
                objects.to_yaml(self.objs).rstrip()]

    def run(self, ctx, st) -> None:
        cluster = apply_mod.Cluster(ctx.api)
        made = []
        for o in self.objs:
            if cluster.get(o["kind"], o["metadata"]["name"]) is not None:
                st.log(f"{objects.ref(o)} exists: left as it is")
                continue
            cluster.create(o)
            made.append(o)
            st.log(f"{objects.ref(o)} created")
        if not made:
            st.skip("they all exist")
