"""invoke verify: the lab's hand-made checks (sections 3-8 of lab 7), run on the live lab.

    model    LabCheck, Outcome, CheckResult, and Lab (the values expected, from settings)
    from_api the API snapshot (plain JSON dicts, read through labkit.kube) and the checks decided on it
    probes   commands on the node / in the client pod, and what their output means
    parse    the real output formats (ip route, resolv.conf, curl, busybox wget/nslookup)
    hints    the instructor's words: likely cause and fixing command per failure
    plan     the checklist with its prerequisites;  runner  runs it concurrently
    report   table, summary, hints, JSON

`run_lab(lab, snapshot, where)` is the core (tests call it with a network-namespace lab);
`where_for(settings)` gives the real backends (SSH to the node, kubectl exec into the client).
"""
from __future__ import annotations

from typing import Callable, Optional

from labkit.verify import plan, runner
from labkit.verify.model import Lab, CheckResult, section_group


def select(checks: list, section: Optional[int]) -> list:
    """The checks of one lab section, plus whatever they stand on (shown too: a skip needs its reason)."""
    if not section:
        return checks
    group = section_group(section)
    by_id = {c.id: c for c in checks}
    wanted, todo = set(), [c.id for c in checks if c.section == group]
    while todo:
        cid = todo.pop()
        if cid not in wanted and cid in by_id:
            wanted.add(cid)
            todo.extend(by_id[cid].needs)
    return [c for c in checks if c.id in wanted]


def run_lab(lab: Lab, snapshot, where: plan.Where, section: Optional[int] = None,
            on_result: Optional[Callable[[CheckResult], None]] = None) -> list[CheckResult]:
    checks = select(plan.build(lab, snapshot, where), section)
    return runner.run(checks, on_result=on_result)


def where_for(settings) -> plan.Where:
    """The live lab: each node over Vagrant's SSH, the client pod through kubectl exec on the master.
    Nothing connects yet; a node that is down makes its checks fail with the one VM-down line."""
    from labkit.backends import get_backend

    client = get_backend(f"pod:{Lab.from_settings(settings).client_pod}", settings)
    return plan.Where(node=client.via, client=client,
                      nodes={w.name: get_backend(f"node:{w.name}", settings) for w in settings.workers})
