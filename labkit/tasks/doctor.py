"""doctor: the preflight report."""
from __future__ import annotations

from labkit.tasks._common import labtask, settings


@labtask(help={"json": "print the report as JSON (for an instructor collecting a room's results)"})
def doctor(c, json=False):  # noqa: A002 (invoke flag name)
    """Check this laptop for the lab: Vagrant and VirtualBox (a pair that works), KVM, Hyper-V, RAM, disk, CPUs, network, bundle."""
    import json as jsonlib

    from invoke import Exit

    from labkit import checks
    from labkit import doctor as laptop
    from labkit import ui

    from labkit.results import record

    s = settings(c)
    results = laptop.run(s)
    report = laptop.as_json(results)
    record("report", report=report)  # for a run that asked for data (the acceptance run embeds it)
    if json:
        ui.say(jsonlib.dumps(report, indent=2))
    else:
        ui.table("labkit doctor", ["check", "result", "detail", "fix"],
                 [[r.check.title, r.status, r.result.detail, r.result.fix] for r in results])
        n = checks.counts(results)
        ui.say(f"{n['fail']} failed, {n['warn']} warning(s), {n['pass']} passed"
               + (f", {n['skip']} skipped" if n["skip"] else ""))
    from labkit.room.client import send  # to the instructor's room, if this laptop joined one (class.join)
    send(s.root, "doctor", report)
    if not checks.all_ok(results):
        raise Exit(code=1)
