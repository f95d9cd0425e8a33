"""doctor: the preflight report."""
from __future__ import annotations

from labkit.tasks._common import labtask, settings


@labtask(help={"json": "print the report as JSON (for an instructor collecting a room's results)"})
def doctor(c, json=False):  # noqa: A002 (invoke flag name)
    """Check this laptop for the lab: Vagrant and VirtualBox (a pair that works), KVM, Hyper-V, RAM, disk, CPUs, network, bundle."""
    import json as jsonlib
    from concurrent.futures import ThreadPoolExecutor

    from invoke import Exit

    from labkit import doctor as checks
    from labkit import ui

    s = settings(c)
    probe = checks.Probe()
    with ThreadPoolExecutor(max_workers=8) as pool:
        report = list(pool.map(lambda check: checks.run_check(check, s, probe), checks.CHECKS))
    if json:
        import datetime
        import platform

        ui.say(jsonlib.dumps({"schema": "labkit-doctor/1", "host": platform.node(),  # a room's reports, told apart
                              "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "checks": [r.__dict__ for r in report]}, indent=2))
    else:
        ui.table("labkit doctor", ["check", "result", "detail", "fix"],
                 [[r.name, r.status, r.detail, r.fix] for r in report])
        fails = sum(r.status == checks.FAIL for r in report)
        warns = sum(r.status == checks.WARN for r in report)
        ui.say(f"{fails} failed, {warns} warning(s), {len(report) - fails - warns} ok")
    from labkit.room.client import send  # to the instructor's room, if this laptop joined one (class.join)
    send(s.root, "doctor", [r.__dict__ for r in report])
    if any(r.status == checks.FAIL for r in report):
        raise Exit(code=1)
