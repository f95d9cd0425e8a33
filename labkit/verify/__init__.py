"""invoke verify: the lab's hand-made checks (sections 3-8 of lab 7), run on the live lab.

    checks/  one file per lab section (s3 … s8, multinode): each check declared once, with the
             function that judges it (labkit/verify/checks/__init__.py says how)
    model    LabCheck (a labkit.checks.Check with section, from → to), Lab (the values expected)
    from_api the API snapshot (plain JSON dicts, read through labkit.kube) and its readers
    probes   what every section's probes share: the way there, HTTP GETs, the request loop
    parse    the real output formats (ip route, resolv.conf, curl, busybox wget/nslookup)
    hints    the instructor's words: likely cause and fixing command per failure, by key
    plan     the checklist: the section files concatenated, with the overlay's prerequisites
    report   table, summary, hints, JSON (labkit.checks' shape, kind "verify")

`run_lab(lab, snapshot, where)` is the core (tests call it with a network-namespace lab);
`where_for(settings)` gives the real backends (SSH to the node, kubectl exec into the client).
The scheduler is labkit.checks.run (8 at once); its results are checks.Checked.
"""
from __future__ import annotations

from typing import Callable, Optional

from labkit import checks as checks_model
from labkit.backends import get_backend
from labkit.verify import hints, plan
from labkit.verify.model import Lab, section_group

WORKERS = 8  # concurrent probes: each is an SSH channel or a kubectl exec on a 2-CPU VM


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


def run(checks: list, on_result: Optional[Callable[[checks_model.Checked], None]] = None) -> list[checks_model.Checked]:
    """labkit.checks.run with verify's concurrency and its words for a check that crashed or overran."""
    return checks_model.run(checks, on_result=on_result, workers=WORKERS, unexpected=hints.unexpected)


def run_lab(lab: Lab, snapshot, where: plan.Where, section: Optional[int] = None,
            on_result: Optional[Callable[[checks_model.Checked], None]] = None) -> list[checks_model.Checked]:
    return run(select(plan.build(lab, snapshot, where), section), on_result=on_result)


def where_for(settings) -> plan.Where:
    """The live lab: each node over Vagrant's SSH, the client pod through kubectl exec on the master.
    Nothing connects yet; a node that is down makes its checks fail with the one VM-down line."""
    client = get_backend(f"pod:{Lab.from_settings(settings).client_pod}", settings)
    return plan.Where(node=client.via, client=client,
                      nodes={w.name: get_backend(f"node:{w.name}", settings) for w in settings.workers})
