"""invoke verify: the lab's hand-made checks (sections 3-8 of lab 7), run on the live lab.

    model    Check, Outcome, Result, and Lab (the values expected, from settings)
    cluster  the API snapshot (plain JSON dicts) and the checks decided on it
    probes   commands on the node / in the client pod, and what their output means
    parse    the real output formats (ip route, resolv.conf, curl, busybox wget/nslookup)
    hints    the instructor's words: likely cause and fixing command per failure
    plan     the checklist with its prerequisites;  runner  runs it concurrently
    report   table, summary, hints, JSON

`run_lab(lab, snapshot, where)` is the core (tests call it with a network-namespace lab);
`where_for(settings)` gives the real backends (SSH to the node, kubectl exec into the client).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from labkit.backends import Backend, Result as RunResult
from labkit.verify import plan, runner
from labkit.verify.model import Lab, Result, section_group


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
            on_result: Optional[Callable[[Result], None]] = None) -> list[Result]:
    checks = select(plan.build(lab, snapshot, where), section)
    return runner.run(checks, on_result=on_result)


class Deferred(Backend):
    """A backend made on first use. Finding the node's SSH facts runs `vagrant ssh-config`, which
    fails when the VM is down: that must become one failed check, not an exception before the table."""

    def __init__(self, name: str, factory: Callable[[], Backend]):
        self.name, self._factory = name, factory
        self._backend: Optional[Backend] = None
        self._error: Optional[str] = None
        self._lock = threading.Lock()

    def _get(self) -> Optional[Backend]:
        with self._lock:
            if self._backend is None and self._error is None:
                try:
                    self._backend = self._factory()
                except Exception as exc:
                    self._error = str(getattr(exc, "message", None) or exc).splitlines()[0][:200]
            return self._backend

    def run(self, argv, timeout=30, stdin=None) -> RunResult:
        started = time.monotonic()
        backend = self._get()
        if backend is None:
            return RunResult(255, "", f"ssh to {self.name} failed: {self._error}", time.monotonic() - started)
        return backend.run(argv, timeout=timeout, stdin=stdin)

    def close(self) -> None:
        if self._backend is not None and hasattr(self._backend, "close"):
            self._backend.close()


def where_for(settings) -> plan.Where:
    """The live lab: each node over Vagrant's SSH, the client pod through kubectl exec on the master."""
    from labkit.backends import Pod, Ssh
    from labkit.vagrant import Vagrant

    def backend(name: str) -> Deferred:
        return Deferred(name, lambda: Ssh.for_node(settings, Vagrant(settings.root), name))

    node_backend = backend(settings.master.name)
    return plan.Where(node=node_backend, client=Pod(node_backend, Lab.from_settings(settings).client_pod),
                      nodes={w.name: backend(w.name) for w in settings.workers})
