"""acceptance: the laptop acceptance run, from nothing to a verified lab that survives a snapshot and a reboot."""
from __future__ import annotations

from labkit.tasks._common import labtask, project_root


@labtask(help={
    "output": "write the report here (default: acceptance-<this laptop's name>-<UTC time>.md in the project)",
    "destroy": "also destroy the VM(s) at the end (the box and the bundle stay)",
})
def acceptance(c, output=None, destroy=False):
    """Run every phase of the lab once (doctor, vm.up, cluster.init, app.deploy, verify, snapshot, reboot)
    and write ONE report file to send back, rewritten after every phase (Ctrl-C keeps what exists).
    Exit 0 only if every phase passed."""
    import datetime
    import os
    import tempfile
    from pathlib import Path

    from invoke import Exit

    from labkit import acceptance as acc
    from labkit import checks, ui
    from labkit import settings as settings_mod
    from labkit.errors import LabkitError
    from labkit.fsutil import write_atomic

    root = project_root(c)
    now = datetime.datetime.now(datetime.timezone.utc)
    started = now.isoformat(timespec="seconds")
    path = Path(output) if output else root / acc.report_name(now)
    try:
        s = settings_mod.load(root, os.environ)
    except LabkitError as exc:  # even then a report exists: the one line is its content
        failed = checks.Checked(checks.Check("settings", "settings", lambda t: None), checks.failed(exc.message, fix=exc.fix))
        write_atomic(path, acc.report({"settings": "unreadable"}, [failed], started, state="stopped: the settings are unreadable",
                                      overridden=acc.overrides(root)))
        ui.say(f"Report written to {path}: send this file back.")
        raise
    with ui.step("Describing this laptop") as st:
        facts = acc.host_facts(s)
        st.note = f"{facts['host os'].split(' (')[0]}, VirtualBox {facts['virtualbox']}, {facts['vagrant']}"
    overridden = acc.overrides(root)
    with tempfile.TemporaryDirectory(prefix="labkit-acceptance-") as work:
        run = acc.Run(acc.Runner(root), Path(work), s.nodes, destroy)

        def write(done, state="running"):
            write_atomic(path, acc.report(facts, done, started, run.evidence, state, overridden, acc.vm_facts(s)))

        write([])
        done, interrupted = acc.run(run, write)
        write(done, "interrupted (Ctrl-C)" if interrupted else "finished")
    ui.table("Acceptance", ["phase", "result", "time", "reason"],
             [[c.check.id, c.status, ui.fmt_seconds(c.seconds), c.result.detail if c.status != checks.PASS else ""]
              for c in done])
    ui.say(f"Report written to {path}: send this file back.")
    if interrupted:
        raise KeyboardInterrupt
    if not checks.all_ok(done) or any(c.status != checks.PASS for c in done):
        raise Exit(code=1)
