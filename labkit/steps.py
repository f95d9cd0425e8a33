"""Bring-up as data: a task is a list of steps, run one after the other, each with its status line.

The shape of kind's pkg/cluster/internal/create/create.go (a list of actions, one small interface,
one file each under actions/) and of pyinvoke/invocations' packaging/release.py (one plan gives the
dry-run and the run). A step has

    title        its status line
    describe()   what it would do, for --dry-run (lines, may be empty)
    run()        the work, given the Context; calls st.skip(note) when already done

`--dry-run` prints `describe()` of the very list the real run executes, so the two cannot drift.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from labkit import ui

DRY_RUN = "Dry run: nothing is changed and no VM is needed."


class Step:
    title = ""

    def describe(self, ctx: "Context") -> list[str]:
        return []

    def run(self, ctx: "Context", st: ui.StatusLine) -> None:
        raise NotImplementedError


@dataclass
class Context:
    """What a step gets: settings, node access (by node name), the API door, and one deadline for the waits."""

    settings: Any
    timeout: float = 0.0
    reach: Optional[Callable[[str], Any]] = None      # node name → Backend (labkit.backends.get_backend)
    open_api: Optional[Callable[[], Any]] = None      # → labkit.kube.Api
    vm_state: Optional[Callable[[str], str]] = None   # node name → Vagrant's state ("running", "not_created", ...)
    open_vagrant: Optional[Callable[[], Any]] = None  # → labkit.vagrant.Vagrant (the VM steps' door to Vagrant)
    started: float = field(default_factory=time.monotonic)
    _nodes: dict = field(default_factory=dict)
    _api: Any = None
    _vagrant: Any = None

    def node(self, name: str):
        """The backend of node `name`, opened once per run (every caller gets the same VM-down line)."""
        if name not in self._nodes:
            backend = self.reach(name)
            if hasattr(backend, "connect"):
                backend.connect()  # a node that is down: labkit.vagrant.NodeDown, here, before any command
            self._nodes[name] = backend
        return self._nodes[name]

    @property
    def api(self):
        """The API door, opened on first use (cluster.init's first steps run before a kubeconfig exists)."""
        if self._api is None:
            self._api = self.open_api()
        return self._api

    @property
    def vagrant(self):
        """The project's Vagrant, made on first use (python-vagrant loads only for a step that needs it)."""
        if self._vagrant is None:
            self._vagrant = self.open_vagrant()
        return self._vagrant

    def open(self) -> "Context":
        """Open the API door now: a task that cannot do anything without the cluster fails before its first step."""
        _ = self.api
        return self

    def left(self) -> float:
        """Seconds left of `timeout`, shared by every wait of the run."""
        return max(1.0, self.started + self.timeout - time.monotonic())

    def close(self) -> None:
        for backend in self._nodes.values():
            if hasattr(backend, "close"):
                backend.close()
        self._nodes.clear()


def context(s, timeout: float = 0, open_vagrant: Optional[Callable[[], Any]] = None) -> Context:
    """The Context of a real run: nodes through labkit.backends, the API through labkit.kube, Vagrant for the
    VM steps and states (`open_vagrant()`, default labkit.vagrant.Vagrant of the project, made on first use)."""
    def project_vagrant():
        from labkit.vagrant import Vagrant

        return Vagrant(s.root)

    def reach(name):
        from labkit.backends import get_backend

        return get_backend(f"node:{name}", s)

    def open_api():
        from labkit import kube

        return kube.Api(s)

    ctx = Context(s, timeout, reach=reach, open_api=open_api, open_vagrant=open_vagrant or project_vagrant)
    ctx.vm_state = lambda name: ctx.vagrant.status(name)
    return ctx


def perform(steps: list[Step], ctx: Context, only_describe: bool) -> bool:
    """A task's --dry-run (only_describe): describe the plan; else run it. True if it ran."""
    if only_describe:
        dry_run(steps, ctx)
        return False
    run(steps, ctx)
    return True


def describe(steps: list[Step], ctx: Context) -> list[str]:
    """The dry-run text: each step's title, numbered, and its describe() lines under it."""
    out = []
    for i, step in enumerate(steps, 1):
        out.append(f"{i}. {step.title}")
        for line in step.describe(ctx):
            out.extend(f"     {part}" if part else "" for part in line.split("\n"))
    return out


def dry_run(steps: list[Step], ctx: Context) -> None:
    ui.say(DRY_RUN + " Each step is skipped when already done.\n")
    for line in describe(steps, ctx):
        ui.say(line)


def run(steps: list[Step], ctx: Context) -> None:
    """Each step under its status line, in order; the first failure stops the run. Node connections are closed."""
    try:
        for step in steps:
            with ui.step(step.title) as st:
                step.run(ctx, st)
    finally:
        ctx.close()
