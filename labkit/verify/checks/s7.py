"""Section 7 of the lab: the can-inventory Deployment has its replicas, and each inv replica answers
with the image's version, from the node (curl) and from client (wget).

A pod that is not Ready waits for deploy.available, whose failure explains it; a Ready one is probed
even while the Deployment is short of a replica.
"""
from __future__ import annotations

from labkit.kube.objects import name as name_of
from labkit.kube.objects import pod_ip, pod_state
from labkit.kube.objects import pod_ready as is_ready
from labkit.verify import hints
from labkit.verify.checks import Inputs
from labkit.verify.from_api import Snapshot, inv_pods, pod_problem
from labkit.verify.model import Lab, LabCheck, Result, failed, passed
from labkit.verify.probes import http_check

SECTION = 7


def checks(x: Inputs) -> list[LabCheck]:
    lab, where = x.lab, x.where
    out = [x.api("deploy.available", SECTION, f"{lab.deployment} {lab.replicas}/{lab.replicas} available",
                 deployment_available, ("api", "node.ready"))]
    pods = sorted(inv_pods(lab, x.snap), key=name_of)
    for side, source, backend, from_node, needs in (
            ("node", lab.node, where.node, lab.node, ("node.ssh", "net.route")),
            ("client", lab.client_pod, where.client, x.client_node, ("client.exec",))):
        if not pods:  # nothing to probe: one placeholder row that the failed deployment check explains
            out.append(LabCheck(f"inv.{side}", "each inv pod answers", lambda t: None, ("deploy.available",) + needs,
                                skip=f"no {lab.deployment} pods to probe", section=SECTION, source=source,
                                target=f"inv pods :{lab.target_port}"))
            continue
        for pod in pods:
            ip, name = pod_ip(pod), name_of(pod)
            ready = is_ready(pod) and ip
            out.append(http_check(
                f"inv.{side}.{name}", SECTION, f"{name} answers", lab, source, backend,
                f"http://{ip}:{lab.target_port}/", f"{ip}:{lab.target_port}", lab.inv_body, exact=True, pod=name,
                needs=("api",) + needs + (() if ready else ("deploy.available",)),
                body_fix="invoke app.build, then invoke app.deploy", from_node=from_node, to_nodes=x.nodes_of([pod]),
                skip=None if ready else f"pod {name} is not Ready"))
    return out


def deployment_available(lab: Lab, snap: Snapshot) -> Result:
    dep = snap.deployment
    if dep is None:
        return failed(f"no Deployment {lab.deployment}", hints.make("not-deployed", what=f"Deployment {lab.deployment}"))
    want = dep.get("spec", {}).get("replicas", 1)
    have = dep.get("status", {}).get("availableReplicas") or 0
    detail = f"{have}/{want} available"
    if want != lab.replicas:
        return failed(f"{detail}; the lab runs {lab.replicas}", hints.make(
            "deploy-replicas", deployment=lab.deployment, found=want, expected=lab.replicas))
    if have >= want:
        return passed(detail)
    bad = [p for p in inv_pods(lab, snap) if not is_ready(p)]
    if bad:
        return failed(f"{detail}; {name_of(bad[0])}: {pod_state(bad[0])}", pod_problem(lab, bad[0], lab.node))
    return failed(detail, hints.make("pod-pending", pod=f"deployment/{lab.deployment}",
                                     reason=f"{have} of {want} replicas available, no pod to explain it", node=lab.node))
