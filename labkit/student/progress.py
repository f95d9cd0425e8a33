"""Where a student is in the lab, derived from the live VM and cluster only (never from a record of
who ran what), so it is right whether the student or the kit did the work.

Sections are evaluated in order; the first one that is not done stops the evaluation: the sections
after it are "not started" and are not checked (a failure there would only repeat the cause).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from labkit.student.checks import Finding, Want
from labkit.student.sections import SECTIONS, SectionOutcome, run_node_checks

DONE, IN_PROGRESS, NOT_STARTED = "done", "in progress", "not started"


@dataclass
class SectionState:
    number: int
    title: str
    status: str
    outcomes: list = field(default_factory=list)  # SectionOutcome...; empty when not checked
    blocked_by: Optional[int] = None  # an earlier section that is not done (then nothing was checked)

    @property
    def failure(self) -> Optional[SectionOutcome]:
        return next((o for o in self.outcomes if not o.ok), None)


def status_of(outcomes: list, kit_checks: tuple = ()) -> str:
    """done if every check passed; in progress if one the student does passed; else not started."""
    if outcomes and all(o.ok for o in outcomes):
        return DONE
    student_passed = [o for o in outcomes if o.ok and o.check not in kit_checks]
    return IN_PROGRESS if student_passed else NOT_STARTED


# Checks the kit's provisioning satisfies before the student starts: they say nothing of progress.
KIT_CHECKS = ("repo",)


def verify_outcomes(results: list, section: int) -> list[SectionOutcome]:
    """`invoke verify`'s results (checks.Checked) for one section (5-8) as outcomes: a failed check's cause
    and fix are the finding."""
    out = []
    for r in results:
        if r.check.section != section:
            continue
        if r.status == "fail":
            finding = Finding(r.result.cause or r.result.detail, r.result.fix or "invoke verify")
        elif r.status == "skip":
            finding = Finding(f"not checked: {r.result.detail or 'a check it needs failed'}", "invoke verify")
        else:
            finding = None
        out.append(SectionOutcome(r.check.id, r.check.title, finding))
    return out


def evaluate(upto: int, node, want: Want, verify_results: Callable[[], list]) -> list[SectionState]:
    """Sections 1..upto on the live lab. `verify_results()` is called at most once, when sections
    1-4 are done and a section from 5 on must be judged."""
    states: list[SectionState] = []
    blocked: Optional[int] = None
    results = None
    for n in range(1, upto + 1):
        sec = SECTIONS[n]
        if blocked is not None:
            states.append(SectionState(n, sec.title, NOT_STARTED, blocked_by=blocked))
            continue
        if sec.uses_verify:
            if results is None:
                results = verify_results()
            outcomes = verify_outcomes(results, n)
        else:
            outcomes = run_node_checks(sec, node, want)
        state = SectionState(n, sec.title, status_of(outcomes, KIT_CHECKS), outcomes)
        states.append(state)
        if state.status != DONE:
            blocked = n
    return states


def as_json(states: list[SectionState], node: str) -> dict:
    """The instructor's view of one laptop (collected from a room by class.*)."""
    def one(st: SectionState) -> dict:
        f = st.failure
        return {"section": st.number, "title": st.title, "status": st.status,
                "first_failure": ({"check": f.check, "title": f.title, "cause": f.finding.cause, "next": f.finding.next}
                                  if f else None),
                "blocked_by": st.blocked_by}

    return {"node": node, "sections": [one(st) for st in states],
            "current": next((st.number for st in states if st.status != DONE), None)}
