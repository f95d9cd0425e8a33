"""The lab's checklist: every section's declared checks (labkit/verify/checks/), in section order.

`needs` encodes the instructor's order of reasoning: a probe whose prerequisite failed would only
fail for the same reason, so it is skipped and names that prerequisite instead. With several nodes,
a probe whose packets cross from one node to another (the master curling a pod on a worker, the
client resolving through CoreDNS on the master) also stands on weave's peer connections of both
nodes: with the overlay down it is skipped behind that one finding instead of failing with its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from labkit.backends import Backend, get_backend
from labkit.verify.checks import Inputs, multinode, s3, s5, s6, s7, s8
from labkit.verify.model import Lab, LabCheck

SECTION_FILES = (s3, s5, s6, s7, s8, multinode)


@dataclass
class Where:
    """The backends the probes run through: the node (SSH) and the client pod (kubectl exec)."""

    node: Backend
    client: Backend
    nodes: dict = field(default_factory=dict)  # the other nodes (workers): name → backend
    exec_in: Optional[Callable[[str, str], Backend]] = None  # (pod, namespace) → backend; tests give their own

    def pod(self, name: str, namespace: str = "default") -> Backend:
        """Commands in a pod: kubectl exec on the master (its open connection), unless exec_in says otherwise."""
        return self.exec_in(name, namespace) if self.exec_in else get_backend(f"pod:{namespace}/{name}", via=self.node)


def build(lab: Lab, snap, where: Where) -> list[LabCheck]:
    x = Inputs(lab, snap, where)
    checks = [c for section_file in SECTION_FILES for c in section_file.checks(x)]
    if multinode.multi(lab):
        checks = [over_the_overlay(c) for c in checks]
    return sorted(checks, key=lambda c: c.section)  # stable: each file's order within its section


def over_the_overlay(check: LabCheck) -> LabCheck:
    """A probe that goes from one node to pods on another also needs weave's connections on both."""
    elsewhere = sorted(set(check.to_nodes) - {check.from_node})
    if not check.from_node or not elsewhere:
        return check
    peers = tuple(f"weave.peers.{n}" for n in [check.from_node, *elsewhere])
    return replace(check, needs=tuple(dict.fromkeys(check.needs + peers)))
