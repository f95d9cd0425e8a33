"""lab: the whole lab in one command, with a per-phase timing summary."""
from __future__ import annotations

import time

from labkit.tasks._common import labtask


@labtask
def lab(c):
    """Build the whole lab: vm.up, cluster.init, app.deploy, then verify. Safe to re-run."""
    from labkit import ui
    from labkit.tasks import app, cluster, verify, vm

    phases = [("vm.up", vm.up), ("cluster.init", cluster.init), ("app.deploy", app.deploy),
              ("verify", verify.verify)]
    done = []
    try:
        for name, phase in phases:
            started = time.monotonic()
            outcome = "failed"
            try:
                phase(c)
                outcome = "ok"
            finally:
                done.append([name, outcome, ui.fmt_seconds(time.monotonic() - started)])
    finally:
        ran = {row[0] for row in done}
        rows = done + [[name, "not run", ""] for name, _ in phases if name not in ran]
        ui.table("Lab timing", ["phase", "result", "time"], rows)
