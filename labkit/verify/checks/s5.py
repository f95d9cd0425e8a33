"""Section 5 of the lab: the pod network. Weave Net runs, CoreDNS runs, kube-dns has its address, and
the node routes the pod range into the weave bridge.

Without a pod network the node is NotReady and CoreDNS Pending: one finding (node.ready says what
weave lacks), not three, so weave waits for node.ready and CoreDNS for weave.
"""
from __future__ import annotations

from labkit.backends import CommandResult
from labkit.kube.objects import COREDNS, name as name_of
from labkit.kube.objects import phase, pod_state, ready_count
from labkit.kube.objects import pod_ready as is_ready
from labkit.text import short
from labkit.verify import hints, parse
from labkit.verify.checks import Inputs
from labkit.verify.from_api import Snapshot, pod_problem, pods_with, weave_pods
from labkit.verify.model import Lab, LabCheck, Result, failed, passed
from labkit.verify.probes import transport

SECTION = 5


def checks(x: Inputs) -> list[LabCheck]:
    lab = x.lab
    return [
        x.api("weave", SECTION, "weave-net 2/2 Running", weave_running, ("api", "node.ready")),
        x.api("coredns", SECTION, "CoreDNS pods Running", coredns_running, ("api", "weave")),
        x.api("dns.service", SECTION, f"kube-dns Service at {lab.kube_dns_ip}", kube_dns_service),
        LabCheck("net.route", "route to the pods via weave",
                 lambda t: decide_route(x.where.node.run(["ip", "route"], timeout=t), lab), ("node.ssh", "weave"),
                 section=SECTION, source=lab.node, target=f"{lab.pod_cidr} (ip route)"),
    ]


def weave_running(lab: Lab, snap: Snapshot) -> Result:
    pods = weave_pods(snap)
    if not pods:
        return failed("no weave-net pod", hints.make("cni-missing"))
    for p in pods:
        ready, total = ready_count(p)
        if not is_ready(p) or ready < total:
            return failed(f"{name_of(p)} {ready}/{total} {phase(p)}", hints.make(
                "weave-not-ready", ready=f"{ready}/{total}", state=pod_state(p), pod=name_of(p), node=lab.node))
    return passed(", ".join(f"{name_of(p)} {'/'.join(map(str, ready_count(p)))} Running" for p in pods))


def coredns_running(lab: Lab, snap: Snapshot) -> Result:
    pods = pods_with(snap, "kube-system", COREDNS)
    if not pods:
        return failed("no CoreDNS pod", hints.make("component-missing", component="CoreDNS"))
    want = ((snap.coredns or {}).get("spec") or {}).get("replicas") or 2  # kubeadm's CoreDNS runs two
    bad = [p for p in pods if not is_ready(p)]
    if not bad and len(pods) >= want:
        return passed(f"{len(pods)}/{want} Running")
    if not bad:
        return failed(f"{len(pods)}/{want} Running", hints.make("coredns-replicas", found=len(pods), expected=want,
                                                                node=lab.node))
    p = bad[0]
    detail = f"{len(pods) - len(bad)}/{want} ready; {name_of(p)} {phase(p)}: {pod_state(p)}"
    problem = pod_problem(lab, p, lab.node)
    if problem.key == "crashloop":
        return failed(detail, hints.make("coredns-crash", state=pod_state(p), node=lab.node))
    if problem.key == "pod-pending":
        return failed(detail, hints.make("coredns-pending", reason=pod_state(p), node=lab.node))
    return failed(detail, problem)


def kube_dns_service(lab: Lab, snap: Snapshot) -> Result:
    svc = snap.dns_service
    if svc is None:
        return failed("no Service kube-system/kube-dns", hints.make("kube-dns-missing"))
    ip = svc.get("spec", {}).get("clusterIP")
    if ip != lab.kube_dns_ip:
        return failed(f"ClusterIP {ip}", hints.make("kube-dns-ip", found=ip, expected=lab.kube_dns_ip))
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in svc.get("spec", {}).get("ports") or [])
    return passed(f"{ip} ({ports})")


def decide_route(res: CommandResult, lab: Lab) -> Result:
    """`ip route` on the node: the pod range goes into the weave bridge."""
    problem = transport(res, lab.node, lab.node)
    if problem:
        return problem
    if not res.ok:
        return failed(short(res.stderr), hints.make("unexpected", error=short(res.stderr, 120), source=lab.node))
    cidr = str(lab.pod_cidr)
    match = [r for r in parse.routes(res.stdout) if r.dest == cidr]
    if not match:
        return failed(f"no route for {cidr} in `ip route`", hints.make("route-missing", cidr=cidr, node=lab.node))
    route = match[0]
    if route.dev != "weave":
        return failed(route.line, hints.make("route-wrong-dev", cidr=cidr, dev=route.dev or route.via, node=lab.node))
    return passed(route.line)
