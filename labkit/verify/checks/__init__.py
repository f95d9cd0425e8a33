"""verify's checks, each declared once, in the file of the lab section it checks.

    s3         sections 3-4: the API server, the node, the control plane, the master taint
    s5         section 5: weave, CoreDNS, kube-dns, the node's route to the pods
    s6         section 6: the web and client pods; nginx's page from the node and from client
    s7         section 7: the Deployment; each inv replica from the node and from client
    s8         section 8: the Service, its endpoints, DNS from the pods, load balancing
    multinode  with workers: every node, weave between them, pods across nodes, DNS and the Service

A file has `checks(x: Inputs) -> list[LabCheck]`. Each check there declares its id, section, title,
from → to (`source`, `target`), `needs`, and `run`, which calls the function that judges, written
next to it in the same file; that function picks its hint from the catalogue (labkit/verify/hints.py,
the wording) by key. A probe that sends packets to pods declares the node it starts on and the nodes
of the pods it reaches (`from_node`, `to_nodes`). labkit/verify/plan.py concatenates the files.
Adding a check: one entry in its section's file (and, for a new cause, one entry in hints.CATALOG).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from labkit.kube.objects import node_name
from labkit.verify.from_api import pod_named
from labkit.verify.model import Lab, LabCheck

API = "API server"


@dataclass(frozen=True)
class Inputs:
    """What a declaration reads: the lab's expected values, the API snapshot, and where probes run
    (plan.Where: the node over SSH, the client pod, the workers, any pod)."""

    lab: Lab
    snap: object  # from_api.Snapshot
    where: object  # plan.Where

    def api(self, id: str, section: int, title: str, decide: Callable, needs: tuple = ("api",)) -> LabCheck:
        """A check decided on the API snapshot alone: `decide(lab, snap)` → Result."""
        return LabCheck(id, title, lambda t: decide(self.lab, self.snap), tuple(needs), timeout=5,
                        section=section, source="laptop", target=API)

    def node_of(self, pod: Optional[dict]) -> Optional[str]:
        return node_name(pod) if pod else None

    def nodes_of(self, pods: Iterable[Optional[dict]]) -> tuple:
        """The nodes these pods run on (a probe's `to_nodes`)."""
        return tuple(sorted({n for n in (self.node_of(p) for p in pods) if n}))

    @property
    def client_node(self) -> Optional[str]:
        return self.node_of(pod_named(self.snap, self.lab.namespace, self.lab.client_pod))
