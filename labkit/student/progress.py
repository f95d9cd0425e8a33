"""Where a student is in the lab, derived from the live VM and cluster only (never from a record of
who ran what), so it is right whether the student or the kit did the work.

Sections are evaluated in order; the first one that is not done stops the evaluation: the sections
after it are "not started" and are not checked (a failure there would only repeat the cause).
Each section's checks are `labkit.checks.Checked`; its status is the section's summary:

    done         every check passed
    not started  the first problem says nothing of the section is there yet (a key in
                 checks.ABSENT) and no check the student's work satisfies has passed
    in progress  anything else: a check of the student's passed, or an attempt went wrong
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from labkit import checks as model
from labkit.student.checks import ABSENT, Want
from labkit.student.sections import SECTIONS, run_node_checks

DONE, IN_PROGRESS, NOT_STARTED = "done", "in progress", "not started"

# Checks that pass before the student does anything in their section (the kit's provisioning,
# kubeadm's kube-dns Service, the kubelet's resolv.conf in the client pod, the node's `curl inv`
# failing as the lab says it does): their passing says nothing of progress.
KIT_CHECKS = ("repo", "dns.service", "dns.resolvconf", "svc.node.name")


@dataclass
class SectionState:
    number: int
    title: str
    status: str
    outcomes: list = field(default_factory=list)  # labkit.checks.Checked...; empty when not checked
    blocked_by: Optional[int] = None  # an earlier section that is not done (then nothing was checked)

    @property
    def failure(self) -> Optional[model.Checked]:
        """What the student should look at: the first failed check, else the first skipped one
        (whose result carries the cause and fix of the check that failed first)."""
        return model.first_problem(self.outcomes)


def status_of(outcomes: list, kit_checks: tuple = KIT_CHECKS) -> str:
    if outcomes and all(o.result.ok for o in outcomes):
        return DONE
    evidence = [o for o in outcomes if o.result.ok and o.check.id not in kit_checks]
    problem = model.first_problem(outcomes)
    if not evidence and (problem is None or problem.result.key in ABSENT):
        return NOT_STARTED
    return IN_PROGRESS


def evaluate(upto: int, node, want: Want, verify_results: Callable[[], object]) -> list[SectionState]:
    """Sections 1..upto on the live lab. `verify_results()` is called at most once, when sections
    1-4 are done and a section from 5 on must be judged; it returns verify's results, or a pair
    (results, the API snapshot they were judged from) so the lab's next command can be precise."""
    from labkit.student import labnext

    states: list[SectionState] = []
    blocked: Optional[int] = None
    verified = None
    for n in range(1, upto + 1):
        sec = SECTIONS[n]
        if blocked is not None:
            states.append(SectionState(n, sec.title, NOT_STARTED, blocked_by=blocked))
            continue
        if sec.uses_verify:
            if verified is None:
                got = verify_results()
                verified = got if isinstance(got, tuple) else (got, None)
            outcomes = labnext.section_checks(n, verified[0], verified[1], want)
        else:
            outcomes = run_node_checks(sec, node, want)
        state = SectionState(n, sec.title, status_of(outcomes), outcomes)
        states.append(state)
        if state.status != DONE:
            blocked = n
    return states


def as_json(states: list[SectionState], node: str) -> dict:
    """The instructor's view of one laptop (collected from a room by class.*); labkit/room/schema.py
    PROGRESS reads it. `next` is the fix of the check that failed first."""
    def one(st: SectionState) -> dict:
        f = st.failure
        return {"section": st.number, "title": st.title, "status": st.status,
                "first_failure": ({"check": f.check.id, "title": f.check.title, "cause": f.result.cause,
                                   "next": f.result.fix} if f else None),
                "blocked_by": st.blocked_by}

    return {"node": node, "sections": [one(st) for st in states],
            "current": next((st.number for st in states if st.status != DONE), None)}
