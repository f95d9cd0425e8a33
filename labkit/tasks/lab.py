"""lab: the whole lab in one command, with a per-phase timing summary in the words of labkit/checks.py."""
from __future__ import annotations

import time

from labkit.tasks._common import INTERRUPTED, labtask, settings


@labtask
def lab(c):
    """Build the whole lab: vm.up, cluster.init, app.deploy, then verify. Safe to re-run."""
    from labkit import checks, ui
    from labkit.tasks import app, cluster, verify, vm

    settings(c)  # bad settings are one line before any phase starts (and before the timing table)
    phases = [("vm.up", vm.up), ("cluster.init", cluster.init), ("app.deploy", app.deploy),
              ("verify", verify.verify)]
    done = []
    try:
        for name, phase in phases:
            started = time.monotonic()
            outcome = checks.FAIL
            try:
                phase(c)
                outcome = checks.PASS
            except BaseException as exc:  # a phase's Ctrl-C arrives as Exit(code=INTERRUPTED)
                if isinstance(exc, KeyboardInterrupt) or getattr(exc, "code", None) == INTERRUPTED:
                    outcome = f"{checks.FAIL}: interrupted"
                raise
            finally:
                done.append([name, outcome, ui.fmt_seconds(time.monotonic() - started)])
    finally:
        ran = {row[0] for row in done}
        rows = done + [[name, f"{checks.SKIP}: not run", ""] for name, _ in phases if name not in ran]
        ui.table("Lab timing", ["phase", "result", "time"], rows)
