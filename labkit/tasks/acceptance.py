"""acceptance: the laptop acceptance run, from nothing to a verified lab that survives a snapshot and a reboot."""
from __future__ import annotations

from labkit.tasks._common import labtask, settings


@labtask(help={
    "output": "write the report here (default: acceptance-report-<date>.md in the project)",
    "destroy": "also destroy the VM(s) at the end (the box and the bundle stay)",
})
def acceptance(c, output=None, destroy=False):
    """Run every phase of the lab once (doctor, vm.up, cluster.init, app.deploy, verify, snapshot, reboot)
    and write ONE report file to send back. Exit 0 only if every phase passed."""
    import datetime
    import tempfile
    from pathlib import Path

    from invoke import Exit

    from labkit import acceptance as acc
    from labkit import ui
    from labkit.fsutil import write_atomic

    s = settings(c)
    now = datetime.datetime.now(datetime.timezone.utc)
    path = Path(output) if output else s.root / f"acceptance-report-{now:%Y%m%d-%H%M%S}.md"
    with ui.step("Describing this laptop") as st:
        facts = acc.host_facts(s)
        st.note = f"{facts['host os'].split(' (')[0]}, VirtualBox {facts['virtualbox']}, {facts['vagrant']}"
    with tempfile.TemporaryDirectory(prefix="labkit-acceptance-") as work:
        outcomes = acc.run_phases(acc.Runner(s.root), Path(work), destroy)
    write_atomic(path, acc.report(facts, outcomes, now.isoformat(timespec="seconds")))
    ui.table("Acceptance", ["phase", "result", "time", "reason"],
             [[o.name, o.status, ui.fmt_seconds(o.seconds), o.reason] for o in outcomes])
    ui.say(f"Report written to {path}: send this file back.")
    if any(o.status != "passed" for o in outcomes):
        raise Exit(code=1)
