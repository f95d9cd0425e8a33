"""What a check is, what it found, and the lab values it compares against."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Optional

from labkit.kube.objects import kube_dns_ip
from labkit.verify.hints import Hint

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

# The lab's sections, as `invoke verify --section N` selects them (3 and 4 are one group).
SECTIONS = {3: "Cluster", 5: "Networking", 6: "Pods", 7: "Deployment", 8: "Service"}
SECTION_LABEL = {3: "3-4", 5: "5", 6: "6", 7: "7", 8: "8"}


def section_group(n: int) -> int:
    """--section 4 means the same group as 3."""
    return 3 if n == 4 else n


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str = ""
    hint: Optional[Hint] = None
    blocked_by: Optional[str] = None  # a skipped check: the id of the failed check it waited for


def passed(detail: str = "") -> Outcome:
    return Outcome(PASSED, detail)


def failed(detail: str, hint: Hint) -> Outcome:
    return Outcome(FAILED, detail, hint)


def warned(detail: str, hint: Hint) -> Outcome:
    """Passes, with a fix worth doing: the lab works, but not the way the check wants to see it (the shared
    check model's `warn`). The report lists it under "What to do"; it does not fail verify."""
    return Outcome(PASSED, detail, hint)


@dataclass
class LabCheck:
    """One line of the lab's checklist.

    `run(timeout)` does the work and returns an Outcome; it must not raise (the runner turns an
    exception into a failure anyway). `needs` are ids of checks that must pass first; a check
    whose target is known to be missing at planning time carries `skip` instead.
    """

    id: str
    section: int
    title: str
    source: str
    target: str
    run: Callable[[float], Outcome]
    needs: tuple = ()
    timeout: float = 10.0
    skip: Optional[str] = None


@dataclass(frozen=True)
class CheckResult:
    check: LabCheck
    outcome: Outcome
    seconds: float

    @property
    def status(self) -> str:
        return self.outcome.status


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
