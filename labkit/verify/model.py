"""verify's check (a labkit.checks.Check with a section and a from → to), the lab's sections, and the lab
values the checks compare against."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from labkit import checks
from labkit.checks import Result, passed  # noqa: F401 (the checks take passed from here, beside failed)
from labkit.kube.objects import kube_dns_ip
from labkit.verify.hints import Hint

# The lab's sections, as `invoke verify --section N` selects them (3 and 4 are one group).
SECTIONS = {3: "Cluster", 5: "Networking", 6: "Pods", 7: "Deployment", 8: "Service"}
SECTION_LABEL = {3: "3-4", 5: "5", 6: "6", 7: "7", 8: "8"}


def section_group(n: int) -> int:
    """--section 4 means the same group as 3."""
    return 3 if n == 4 else n


def failed(detail: str, hint: Hint) -> Result:
    """A failed check: what was found, and the catalogue's cause, fix and key (labkit/verify/hints.py)."""
    return checks.failed(detail, hint.cause, hint.fix, hint.key)


def warned(detail: str, hint: Hint) -> Result:
    """A warning: the lab works, but not the way the check wants to see it; the catalogue's cause and fix."""
    return checks.warned(detail, hint.cause, hint.fix, hint.key)


@dataclass(frozen=True, kw_only=True)
class LabCheck(checks.Check):
    """One line of the lab's checklist: a checks.Check with what the table shows and where it probes.

    `run(timeout)` returns a checks.Result and must not raise (the scheduler turns an exception into a
    failure anyway). `source → target` is the table's "from → to". A probe whose packets travel between
    pods or nodes declares the node it starts on (`from_node`) and the nodes of the pods it reaches
    (`to_nodes`): with several nodes, a probe that crosses from one to another also needs weave's
    connections of both (labkit/verify/plan.py).
    """

    section: int
    source: str
    target: str
    from_node: Optional[str] = None
    to_nodes: tuple = ()


@dataclass(frozen=True)
class Lab:
    """The values the checks expect: from settings where they are settings, else the lab's names."""

    node: str
    node_ip: str
    pod_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    dns_domain: str
    kubernetes_version: str
    inv_image: str
    namespace: str = "default"
    web_pod: str = "web"
    client_pod: str = "client"
    deployment: str = "can-inventory"
    replicas: int = 2                    # manifests/deploy.yaml, as in the lab
    app_labels: dict = field(default_factory=lambda: {"app": "inv"})
    service: str = "inv"
    service_port: int = 80
    target_port: int = 8080
    nginx_marker: str = "<title>Welcome to nginx!</title>"
    nodes: tuple = ()                    # ((name, host-only IP, role), ...): every node in settings
    master_runs_pods: bool = True        # False with workers unless settings say so: the taint stays

    @classmethod
    def from_settings(cls, settings) -> "Lab":
        net = settings.network
        image = settings.data["images"]["inv"]  # trash-can/inv:0.1 → the service answers version 0.1
        return cls(node=settings.master.name, node_ip=settings.master.ip,
                   pod_cidr=ipaddress.ip_network(net["pod_cidr"]),
                   service_cidr=ipaddress.ip_network(net["service_cidr"]),
                   dns_domain=net["dns_domain"], kubernetes_version=settings.versions["kubernetes"],
                   inv_image=image, nodes=tuple((n.name, n.ip, n.role) for n in settings.nodes),
                   master_runs_pods=settings.untaint_master)

    @property
    def kube_dns_ip(self) -> str:
        return kube_dns_ip(self.service_cidr)

    @property
    def inv_version(self) -> str:
        return self.inv_image.rsplit(":", 1)[-1]

    @property
    def inv_body(self) -> str:
        return '{"version":"%s"}' % self.inv_version

    @property
    def service_fqdn(self) -> str:
        return f"{self.service}.{self.namespace}.svc.{self.dns_domain}"

    @property
    def search_first(self) -> str:
        return f"{self.namespace}.svc.{self.dns_domain}"

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.app_labels.items())
