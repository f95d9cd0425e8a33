"""Doctor's checks and `vagrant status`, concurrently: when every node already runs, no check can block."""
from __future__ import annotations

from labkit.errors import LabkitError
from labkit.steps import Step


def in_background(fn, *args):
    """fn(*args) in a daemon thread, as a Future. Unlike a pool's threads, nothing joins it (not even
    Python's exit), so an answer we turn out not to need costs no time."""
    import threading
    from concurrent.futures import Future

    future = Future()

    def work():
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, daemon=True).start()
    return future


def preflight(s, vg, nodes, log=lambda line: None) -> dict:
    """Doctor's checks and `vagrant status`, concurrently. Returns each node's state.

    Nothing to start (all running) → no check can block, and none is waited for. Otherwise the
    first failed check stops us with its fix, before Vagrant can fail with something less clear.
    """
    from labkit import doctor

    probe = doctor.Probe()
    checks = [in_background(doctor.run_check, check, s, probe) for check in doctor.CHECKS]
    states = {n.name: in_background(vg.status, n.name) for n in nodes}
    try:
        found = {name: f.result() for name, f in states.items()}
    except LabkitError as exc:
        found, status_error = None, exc
    if found and all(state == "running" for state in found.values()):
        return found
    failed = [c for c in (f.result() for f in checks) if c.status == doctor.FAIL]
    if failed:
        for c in failed:
            log(f"{c.name}: {c.detail}")
        more = f" ({len(failed) - 1} more problem(s) above; invoke doctor shows all)" if len(failed) > 1 else ""
        raise LabkitError(failed[0].detail + more, failed[0].fix)
    if found is None:
        raise status_error
    return found


class CheckPrerequisites(Step):
    title = "Checking prerequisites"

    def __init__(self, nodes, found):
        self.nodes, self.found = nodes, found

    def describe(self, ctx) -> list[str]:
        return ["laptop: invoke doctor's checks and `vagrant status` of " + ", ".join(n.name for n in self.nodes)
                + ", concurrently; the first failed check stops here with its fix, unless every VM already runs"]

    def run(self, ctx, st) -> None:
        self.found.states.update(preflight(ctx.settings, ctx.vagrant, self.nodes, st.log))
