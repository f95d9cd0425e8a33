"""verify with workers: what a single node hides (the overlay between hosts, Services and DNS across nodes).

Declared only when settings list more than one node; every check names the node it is about, and sits
in the lab section it belongs to (3, 5 or 8).

    node.ssh.<worker>      SSH to each worker
    node.ready.<worker>    each worker registered and Ready
    node.ip.<node>         each node's InternalIP is its host-only address (never the NAT 10.0.2.15)
    weave.<node>           a weave-net pod on each node, 2/2 Ready
    weave.peers.<node>     weave on each node has an established connection to every other node
    xnode.<from>.<to>      a pod on <from> reaches a pod on <to> (the node itself where no lab pod runs)
    dns.<worker>           a pod on each worker resolves the inv Service through kube-dns
    svc.nodes              the inv Service is answered by replicas on different nodes

Weave's status comes from its router's HTTP API on the node (127.0.0.1:6784: Weave Net 2.8.1
prog/weave-kube/launch.sh HTTP_ADDR, passed as --http-addr; weave-net runs in the host network), in the text format of Weave Net 2.8.1 prog/weaver/http.go `connectionsTemplate`:
    {{if .Outbound}}->{{else}}<-{{end}} {{printf "%-21v" .Address}} {{printf "%-11v" .State}} {{.Info}} {{attrs}}
with State one of established, pending, retrying, failed, connecting, waiting (mesh status.go), Info
"fastdp 5a:..(worker-1)" for an established connection, "<error>, retry: <time>" for a failed one.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Optional

from labkit.backends import Backend
from labkit.kube import objects
from labkit.kube.objects import COREDNS, cluster_ip, condition, labels_match, node_name, phase, pod_ip, pod_state
from labkit.kube.objects import name as name_of
from labkit.kube.objects import pod_ready as is_ready
from labkit.text import short
from labkit.verify import hints, parse
from labkit.verify.checks import Inputs
from labkit.verify.checks.s3 import decide_reachable, node_ready
from labkit.verify.checks.s8 import decide_lookup
from labkit.verify.from_api import inv_pods, node_of, weave_pods
from labkit.verify.model import Lab, LabCheck, Result, failed, passed, warned
from labkit.verify.probes import LB_REQUESTS, decide_http, http_get, lb_command, transport

WEAVE_CONNECTIONS_URL = "http://127.0.0.1:6784/status/connections"
OVERLAY_PORTS = "TCP 6783 and UDP 6783-6784"
COREDNS_HEALTH = 8080  # CoreDNS's health plugin (kubeadm's Corefile: `health`) answers "OK" on :8080/health


def multi(lab: Lab) -> bool:
    return len(lab.nodes) > 1


def workers(lab: Lab) -> list:
    return [(name, ip) for name, ip, role in lab.nodes if role != "master"]


def ssh_id(lab: Lab, node: str) -> str:
    return "node.ssh" if node == lab.node else f"node.ssh.{node}"


def on(lab: Lab, node: str) -> Lab:
    """The lab as seen from one node: hints then name that node."""
    return dataclasses.replace(lab, node=node)


# --- nodes in the API --------------------------------------------------------------------------

def worker_ready(name: str):
    def check(lab: Lab, snap) -> Result:
        if node_of(on(lab, name), snap) is None:
            known = ", ".join(name_of(n) for n in snap.nodes) or "none"
            return failed(f"no node {name} (registered: {known})", hints.make("worker-missing", node=name))
        result = node_ready(on(lab, name), snap)
        if result.key in ("kubelet-not-ready", "kubelet-down"):
            reason = result.detail.split(": ", 1)[-1]
            return failed(result.detail, hints.make("worker-not-ready", node=name, reason=reason))
        return result
    return check


def node_ip(name: str, ip: str):
    def check(lab: Lab, snap) -> Result:
        node = node_of(on(lab, name), snap)
        if node is None:
            return failed(f"no node {name}", hints.make("worker-missing", node=name))
        found = objects.internal_ip(node)
        if found == ip:
            return passed(f"InternalIP {ip}")
        return failed(f"InternalIP {found or 'none'}, not {ip}",
                      hints.make("node-ip-wrong", node=name, found=found or "none", expected=ip))
    return check


def schedulable(snap) -> list:
    """Ready nodes without the master's NoSchedule taint: where the inv replicas can go."""
    out = []
    for n in snap.nodes:
        taints = n.get("spec", {}).get("taints") or []
        if condition(n, "Ready").get("status") == "True" and not any(
                t.get("effect") in ("NoSchedule", "NoExecute") for t in taints):
            out.append(name_of(n))
    return out


# --- weave on every node -----------------------------------------------------------------------

def weave_on(name: str):
    def check(lab: Lab, snap) -> Result:
        pods = [p for p in weave_pods(snap) if node_name(p) == name]
        if not pods:
            return failed(f"no weave-net pod on {name}", hints.make("weave-missing-on", node=name))
        p = pods[0]
        ready, total = objects.ready_count(p)
        if not is_ready(p) or ready < total:
            return failed(f"{name_of(p)} {ready}/{total} {phase(p)}", hints.make(
                "weave-not-ready-on", node=name, ready=f"{ready}/{total}", state=pod_state(p),
                pod=name_of(p)))
        return passed(f"{name_of(p)} {ready}/{total} Running")
    return check


@dataclass(frozen=True)
class Connection:
    outbound: bool
    address: str  # ip:port as weave prints it
    state: str
    info: str

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]


CONNECTION = re.compile(r"^(->|<-)\s+(\S+)\s+(established|pending|retrying|failed|connecting|waiting)\b\s*(.*)$")


def weave_connections(text: str) -> list[Connection]:
    """Lines of weave's /status/connections (`weave status connections`); other lines are ignored."""
    out = []
    for line in text.splitlines():
        m = CONNECTION.match(line.strip())
        if m:
            out.append(Connection(m.group(1) == "->", m.group(2), m.group(3), m.group(4).strip()))
    return out


def decide_peers(res, lab: Lab, name: str, peers: dict) -> Result:
    """peers: the other nodes, name → host-only IP. Each needs an established weave connection."""
    problem = transport(res, name, name)
    if problem:
        return problem
    if not res.ok:
        error = short(parse.first_line(res.stderr) or f"curl exit {res.exit_code}", 120)
        return failed(error, hints.make("weave-status-unreadable", node=name, error=error))
    conns = weave_connections(res.stdout)
    good, bad = [], []
    for peer, ip in sorted(peers.items()):
        mine = [c for c in conns if c.host == ip]
        up = next((c for c in mine if c.state == "established"), None)
        if up:
            good.append(f"{peer} {up.info.split()[0] if up.info else ''}".rstrip())
        else:
            why = f"{mine[0].state}: {mine[0].info}" if mine else "no connection at all"
            bad.append((peer, ip, why))
    if not bad:
        return passed("established to " + ", ".join(good))
    peer, ip, why = bad[0]
    detail = "; ".join(f"{p} {w}" for p, _ip, w in bad)
    return failed(short(f"not to {detail}", 90), hints.make(
        "weave-peer-down", node=name, peer=peer, peer_ip=ip, error=short(why, 140), ports=OVERLAY_PORTS))


# --- pods on each node -------------------------------------------------------------------------

def pods_on(lab: Lab, snap, name: str) -> list:
    return [p for p in snap.pods.get(lab.namespace, []) + snap.pods.get("kube-system", [])
            if node_name(p) == name and is_ready(p) and pod_ip(p)
            and not p.get("spec", {}).get("hostNetwork") and not p.get("metadata", {}).get("deletionTimestamp")]


def source_pod(lab: Lab, snap, name: str) -> Optional[dict]:
    """A pod on the node we can exec into with busybox's wget and nslookup: the client, else an inv
    replica (python:*-alpine images carry busybox)."""
    found = [p for p in pods_on(lab, snap, name) if p["metadata"].get("namespace", lab.namespace) == lab.namespace
             and (name_of(p) == lab.client_pod or labels_match(p, lab.app_labels))]
    return sorted(found, key=lambda p: (name_of(p) != lab.client_pod, name_of(p)))[0] if found else None


@dataclass(frozen=True)
class Target:
    pod: str
    namespace: str
    url: str
    expect: str
    exact: bool

    @property
    def where(self) -> str:
        return self.url.split("//", 1)[1].split("/", 1)[0]


def target_pod(lab: Lab, snap, name: str) -> Optional[Target]:
    """Something serving HTTP on the node: an inv replica, web, else CoreDNS's health port."""
    here = pods_on(lab, snap, name)
    for p in sorted(here, key=name_of):
        if labels_match(p, lab.app_labels) and p["metadata"].get("namespace") == lab.namespace:
            return Target(name_of(p), lab.namespace, f"http://{pod_ip(p)}:{lab.target_port}/",
                          lab.inv_body, True)
    for p in here:
        if name_of(p) == lab.web_pod and p["metadata"].get("namespace") == lab.namespace:
            return Target(lab.web_pod, lab.namespace, f"http://{pod_ip(p)}/", lab.nginx_marker, False)
    for p in sorted(here, key=name_of):
        if labels_match(p, COREDNS):
            return Target(name_of(p), "kube-system", f"http://{pod_ip(p)}:{COREDNS_HEALTH}/health",
                          "OK", True)
    return None


# --- the checks ----------------------------------------------------------------------------------

def checks(x: Inputs) -> list[LabCheck]:
    """The multi-node checks (nothing for a single node). `x.where.nodes`: worker name → its SSH backend."""
    lab, snap, where = x.lab, x.snap, x.where
    if not multi(lab):
        return []
    ips = {name: ip for name, ip, _role in lab.nodes}
    names = list(ips)
    out: list[LabCheck] = []

    def backend(name: str) -> Backend:
        return where.node if name == lab.node else where.nodes[name]

    # --- section 3: every node registered, Ready, on its host-only address -------------------------
    for name, ip in workers(lab):
        out.append(LabCheck(f"node.ssh.{name}", f"SSH to node {name}",
                            lambda t, n=name: decide_reachable(backend(n).run(["true"], timeout=t), n),
                            timeout=20, section=3, source="laptop", target=f"{name} (ssh)"))
        out.append(x.api(f"node.ready.{name}", 3, f"node {name} Ready", worker_ready(name)))
    for name in names:
        ready = "node.ready" if name == lab.node else f"node.ready.{name}"
        out.append(x.api(f"node.ip.{name}", 3, f"{name} InternalIP = host-only {ips[name]}", node_ip(name, ips[name]),
                         ("api", ready)))

    # --- section 5: the overlay between the nodes ------------------------------------------------
    for name in names:
        out.append(x.api(f"weave.{name}", 5, f"weave-net 2/2 on {name}", weave_on(name)))
    for name in names:
        others = {n: ip for n, ip in ips.items() if n != name}
        out.append(LabCheck(
            f"weave.peers.{name}", f"weave on {name} connected to every other node",
            lambda t, n=name, o=others: decide_peers(
                backend(n).run(["curl", "-sS", "-m", str(max(int(t) - 1, 1)), WEAVE_CONNECTIONS_URL], timeout=t),
                lab, n, o),
            (ssh_id(lab, name), f"weave.{name}"), section=5, source=name,
            target="127.0.0.1:6784 (weave status connections)"))
    out += [_cross(lab, snap, where, backend, src, dst) for src in names for dst in names if src != dst]

    # --- section 8: DNS and the Service across nodes ---------------------------------------------
    svc_ip = cluster_ip(snap.service) or "?"
    for name, _ip in workers(lab):
        pod = source_pod(lab, snap, name)
        pod_name = name_of(pod) if pod else None
        out.append(LabCheck(
            f"dns.{name}", f"a pod on {name} resolves the Service",
            lambda t, n=name, p=pod_name: _dns(lab, n, p, where.pod(p).run(["nslookup", lab.service_fqdn], timeout=t),
                                               svc_ip),
            ("node.ssh", "coredns", "dns.service", "svc.ip", f"weave.peers.{name}"),
            skip=None if pod else f"no lab pod runs on {name}", section=8, source=pod_name or name,
            target=f"{lab.service_fqdn} @{lab.kube_dns_ip}"))
    room = min(len(schedulable(snap)), lab.replicas)

    def spread(t):
        if room < 2:  # one worker under a tainted master: nowhere to spread to, a healthy lab (not a skip)
            return warned(f"only {room} node can run the replicas", hints.Hint(
                "one-node-replicas", "the master is tainted and one worker runs every replica, so the Service "
                "cannot be answered from two nodes", "invoke vm.up and cluster.join with LABKIT_WORKERS=2, or set "
                "master_runs_pods: true in settings.local.yaml"))
        return decide_spread(where.client.run(lb_command(f"http://{svc_ip}:{lab.service_port}/", LB_REQUESTS),
                                              timeout=t), lab, snap, LB_REQUESTS)

    out.append(LabCheck(
        "svc.nodes", "the Service is answered by replicas on different nodes", spread,
        ("svc.endpoints-match", "deploy.available", "client.exec", "net.route")
        + tuple(f"weave.peers.{n}" for n in names), timeout=20,
        section=8, source=lab.client_pod, target=f"{svc_ip}:{lab.service_port} ×{LB_REQUESTS}"))
    return out


def _cross(lab: Lab, snap, where, backend, src: str, dst: str) -> LabCheck:
    pod = source_pod(lab, snap, src)
    target = target_pod(lab, snap, dst)
    needs = ("api", f"weave.peers.{src}", f"weave.peers.{dst}")
    if pod is not None:
        source, via, tool = name_of(pod), where.pod(name_of(pod)), "wget"
        needs = ("node.ssh",) + needs
        title = f"pod {source} on {src} reaches a pod on {dst}"
    else:
        source, via, tool = src, backend(src), "curl"
        needs = (ssh_id(lab, src),) + needs
        title = f"{src} (no lab pod there) reaches a pod on {dst}"
    ctx = {"source": source, "target": target.where if target else "?", "pod": target.pod if target else "?",
           "node": lab.node, "service": lab.service, "exec_pod": source if pod is not None else None,
           "src_node": src, "dst_node": dst}

    def run(t):
        res = via.run(http_get(tool, target.url, t), timeout=t)
        return decide_http(res, tool=tool, expect=target.expect, exact=target.exact, ctx=ctx,
                           on_refused="http-refused", on_unreachable="xnode-unreachable",
                           body_fix=f'invoke vm.ssh --command "kubectl -n {target.namespace} describe pod {target.pod}"')

    return LabCheck(f"xnode.{src}.{dst}", title, run, needs, section=5, source=source, target=ctx["target"],
                    skip=None if target else f"no Ready pod serving HTTP on {dst}")


def _dns(lab: Lab, node: str, pod: str, res, svc_ip: str) -> Result:
    result = decide_lookup(res, on(lab, node), pod, svc_ip)
    if result.key == "dns-down":  # the others resolve: this node's path is broken
        return failed(result.detail, hints.make("dns-down-node", node=node, pod=pod, server=lab.kube_dns_ip,
                                                error=result.detail))
    return result


def decide_spread(res, lab: Lab, snap, count: int) -> Result:
    """Requests to the ClusterIP: did replicas on at least two nodes answer (as many as can run)?"""
    problem = transport(res, lab.client_pod, lab.node, lab.client_pod)
    if problem:
        return problem
    pods = inv_pods(lab, snap)
    node_of = {name_of(p): node_name(p) for p in pods}
    ready = {node_of[name_of(p)] for p in pods if is_ready(p)}
    values = {"service": lab.service, "selector": lab.selector, "count": count, "source": lab.client_pod,
              "node": lab.node}
    if not ready:
        return failed("no replica is ready", hints.make("svc-one-node", on_node="no node", **values))
    if len(ready) < 2:  # a warning: the anti-affinity is only preferred (a rolling update, a worker joined late)
        where = ", ".join(sorted(ready))
        return warned(f"every ready replica runs on {where}", hints.make("svc-one-node", on_node=where, **values))
    output = res.stdout + "\n" + res.stderr
    seen = parse.served_by(output)
    answered = {node_of.get(name, "?") for name in seen}
    tally = {}
    for name in seen:
        tally[node_of.get(name, "?")] = tally.get(node_of.get(name, "?"), 0) + 1
    shown = ", ".join(f"{n} ×{k}" for n, k in sorted(tally.items())) or "no answer"
    missing = sorted(ready - answered)
    if not missing:
        return passed(f"{len(seen)} requests answered from {shown}")
    errors = parse.wget_errors(output)
    error = short(errors[0], 100) if errors else "no error"
    return failed(f"{shown}; never {', '.join(missing)}", hints.make(
        "svc-remote-silent", answered=", ".join(sorted(answered)) or "no node", missing=", ".join(missing),
        first=missing[0], error=error, **values))
