"""Section 6 of the lab: the web and client pods run in the pod range, kubectl exec reaches client, and
nginx's welcome page comes back from the node (curl) and from client (wget).

Pod-to-pod traffic is bridged on weave, so the client's probe does not stand on the node's route;
the node's does.
"""
from __future__ import annotations

import ipaddress

from labkit.backends import CommandResult
from labkit.kube.objects import phase, pod_ip, pod_state
from labkit.kube.objects import pod_ready as is_ready
from labkit.text import short
from labkit.verify import hints
from labkit.verify.checks import Inputs
from labkit.verify.from_api import Snapshot, pod_named, pod_problem
from labkit.verify.model import Lab, LabCheck, Result, failed, passed
from labkit.verify.probes import http_check, transport

SECTION = 6


def checks(x: Inputs) -> list[LabCheck]:
    lab, where, node, client = x.lab, x.where, x.lab.node, x.lab.client_pod
    web = pod_named(x.snap, lab.namespace, lab.web_pod)
    ip = pod_ip(web) if web else None
    url = f"http://{ip}/" if ip else None
    out = [
        x.api("web.running", SECTION, f"{lab.web_pod} Running in the pod range", pod_running(lab.web_pod),
              ("api", "node.ready")),
        x.api("client.running", SECTION, f"{client} Running in the pod range", pod_running(client),
              ("api", "node.ready")),
        LabCheck("client.exec", f"kubectl exec into {client}",
                 lambda t: decide_exec(where.client.run(["true"], timeout=t), client, node),
                 ("node.ssh", "client.running"), section=SECTION, source=node, target=f"{client} (exec)"),
    ]
    for side, source, backend, from_node, needs in (
            ("node", node, where.node, node, ("web.running", "node.ssh", "net.route")),
            ("client", client, where.client, x.client_node, ("web.running", "client.exec"))):
        out.append(http_check(
            f"web.{side}", SECTION, f"{lab.web_pod} serves nginx's welcome page", lab, source, backend, url,
            f"{ip or '?'}:80", lab.nginx_marker, exact=False, pod=lab.web_pod, needs=needs,
            body_fix=f'invoke vm.ssh --command "kubectl describe pod {lab.web_pod}"',
            from_node=from_node, to_nodes=x.nodes_of([web]), skip=None if url else f"pod {lab.web_pod} has no address"))
    return out


def pod_running(name: str):
    """`web` / `client`: Running, Ready, with an address in the pod range."""

    def check(lab: Lab, snap: Snapshot) -> Result:
        pod = pod_named(snap, lab.namespace, name)
        if pod is None:
            return failed(f"no pod {name}", hints.make("not-deployed", what=f"pod {name}"))
        if not is_ready(pod):
            return failed(f"{phase(pod)}: {pod_state(pod)}", pod_problem(lab, pod, lab.node))
        ip = pod_ip(pod)
        if not ip or not in_network(ip, lab.pod_cidr):
            return failed(f"address {ip}", hints.make("pod-ip-outside", pod=name, ip=ip, cidr=lab.pod_cidr, node=lab.node))
        return passed(f"Running at {ip}")

    return check


def in_network(ip: str, network) -> bool:
    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


def decide_exec(res: CommandResult, pod: str, node: str) -> Result:
    """`true` in the pod through kubectl exec on the node."""
    problem = transport(res, "node", node, pod)
    if problem:
        return problem
    if res.ok:
        return passed("kubectl exec ok")
    return failed(short(res.stderr or f"exit code {res.exit_code}"),
                  hints.make("exec-failed", pod=pod, error=short(res.stderr, 160) or res.exit_code, node=node))
