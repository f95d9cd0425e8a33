"""The lab's checklist: every check, where it runs, and what it stands on.

`needs` encodes the instructor's order of reasoning. A probe whose prerequisite failed would only
fail for the same reason, so it is skipped and names that prerequisite instead. Some edges are
lessons of the lab: traffic from a pod to any Service (kube-dns included) is DNATed on the node and
then routed into the pod range, so every Service probe needs the node's weave route, while direct
pod-to-pod traffic (bridged on weave) does not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from labkit.backends import Backend, Pod
from labkit.verify import from_api, nodes, probes
from labkit.verify.model import LabCheck, Lab


@dataclass
class Where:
    """The backends the probes run through: the node (SSH) and the client pod (kubectl exec)."""

    node: Backend
    client: Backend
    nodes: dict = field(default_factory=dict)  # the other nodes (workers): name → backend
    exec_in: Optional[Callable[[str, str], Backend]] = None  # (pod, namespace) → backend; tests give their own

    def pod(self, name: str, namespace: str = "default") -> Backend:
        """Commands in a pod: kubectl exec on the master, unless exec_in says otherwise."""
        return self.exec_in(name, namespace) if self.exec_in else Pod(self.node, name, namespace)


def build(lab: Lab, snap: from_api.Snapshot, where: Where) -> list[LabCheck]:
    node, client_name = lab.node, lab.client_pod
    api = "API server"
    checks: list[LabCheck] = []

    def api_check(id, section, title, decide, needs=("api",)):
        checks.append(LabCheck(id, section, title, "laptop", api, lambda t: decide(lab, snap), tuple(needs), timeout=5))

    # --- sections 3-4: the cluster -----------------------------------------------------------
    checks.append(LabCheck("api", 3, "API server reachable", "laptop", api,
                        lambda t: from_api.api_reachable(lab, snap), timeout=5))
    checks.append(LabCheck("node.ssh", 3, f"SSH to node {node}", "laptop", f"{node} (ssh)",
                        lambda t: probes.decide_reachable(where.node.run(["true"], timeout=t), node), timeout=20))
    api_check("node.ready", 3, f"node {node} Ready", from_api.node_ready)
    api_check("node.taint", 3, *nodes.taint_check(lab))
    for comp in from_api.CONTROL_PLANE + ("kube-proxy",):
        api_check(f"cp.{comp}", 3, f"{comp} running", from_api.component_running(comp))

    # --- section 5: networking ---------------------------------------------------------------
    # Without a pod network the node is NotReady and CoreDNS Pending: one finding (node.ready says
    # what weave lacks), not three.
    api_check("weave", 5, "weave-net 2/2 Running", from_api.weave_running, ("api", "node.ready"))
    api_check("coredns", 5, "CoreDNS pods Running", from_api.coredns_running, ("api", "weave"))
    api_check("dns.service", 5, f"kube-dns Service at {lab.kube_dns_ip}", from_api.kube_dns_service)
    checks.append(LabCheck("net.route", 5, "route to the pods via weave", node, f"{lab.pod_cidr} (ip route)",
                        lambda t: probes.decide_route(where.node.run(["ip", "route"], timeout=t), lab),
                        ("node.ssh", "weave")))

    # --- section 6: pods ---------------------------------------------------------------------
    api_check("web.running", 6, f"{lab.web_pod} Running in the pod range", from_api.pod_running(lab.web_pod),
              ("api", "node.ready"))
    api_check("client.running", 6, f"{client_name} Running in the pod range", from_api.pod_running(client_name),
              ("api", "node.ready"))
    checks.append(LabCheck("client.exec", 6, f"kubectl exec into {client_name}", node, f"{client_name} (exec)",
                        lambda t: probes.decide_exec(where.client.run(["true"], timeout=t), client_name, node),
                        ("node.ssh", "client.running")))
    web = from_api.pod_named(snap, lab.namespace, lab.web_pod)
    web_url = f"http://{from_api.pod_ip(web)}/" if web and from_api.pod_ip(web) else None
    web_target = f"{from_api.pod_ip(web) if web else '?'}:80"
    for side, source, backend, needs in (("node", node, where.node, ("web.running", "node.ssh", "net.route")),
                                         ("client", client_name, where.client, ("web.running", "client.exec"))):
        checks.append(_http(f"web.{side}", 6,
                            f"{lab.web_pod} serves nginx's welcome page", lab, source, backend, web_url,
                            web_target, lab.nginx_marker, exact=False, pod=lab.web_pod, needs=needs,
                            body_fix=f'invoke vm.ssh --command "kubectl describe pod {lab.web_pod}"'))
        if web_url is None:
            checks[-1].skip = f"pod {lab.web_pod} has no address"

    # --- section 7: the deployment -----------------------------------------------------------
    api_check("deploy.available", 7, f"{lab.deployment} {lab.replicas}/{lab.replicas} available",
              from_api.deployment_available, ("api", "node.ready"))
    pods = sorted(from_api.inv_pods(lab, snap), key=from_api.name_of)
    for side, source, backend, needs in (("node", node, where.node, ("node.ssh", "net.route")),
                                         ("client", client_name, where.client, ("client.exec",))):
        if not pods:  # nothing to probe: one placeholder row that the failed deployment check explains
            checks.append(LabCheck(f"inv.{side}", 7, "each inv pod answers", source,
                                f"inv pods :{lab.target_port}", lambda t: None, ("deploy.available",) + needs,
                                skip=f"no {lab.deployment} pods to probe"))
            continue
        for pod in pods:
            ip, name = from_api.pod_ip(pod), from_api.name_of(pod)
            ready = from_api.is_ready(pod) and ip
            # A pod that is not Ready waits for deploy.available, whose failure explains it; a Ready
            # one is probed even while the Deployment is short of a replica.
            check = _http(f"inv.{side}.{name}", 7, f"{name} answers", lab, source, backend,
                          f"http://{ip}:{lab.target_port}/", f"{ip}:{lab.target_port}", lab.inv_body, exact=True,
                          pod=name, needs=("api",) + needs + (() if ready else ("deploy.available",)),
                          body_fix="invoke app.build, then invoke app.deploy")
            if not ready:
                check.skip = f"pod {name} is not Ready"
            checks.append(check)

    # --- section 8: the Service --------------------------------------------------------------
    svc_ip = ((snap.service or {}).get("spec") or {}).get("clusterIP") or "?"
    svc_url = f"http://{svc_ip}:{lab.service_port}/"
    api_check("svc.ip", 8, f"Service {lab.service} has a ClusterIP, {lab.service_port} → {lab.target_port}",
              from_api.service_ip)
    api_check("svc.endpoints", 8, f"{lab.service} has ready endpoints", from_api.service_has_endpoints, ("svc.ip",))
    api_check("svc.endpoints-match", 8, f"endpoints = the inv pods on {lab.target_port}",
              from_api.endpoints_match_pods, ("svc.endpoints",))
    dns_ip = ((snap.dns_service or {}).get("spec") or {}).get("clusterIP")  # what the kubelet must write
    checks.append(LabCheck("dns.resolvconf", 8, f"{client_name}'s resolv.conf uses kube-dns", client_name,
                        "/etc/resolv.conf",
                        lambda t: probes.decide_resolv_conf(where.client.run(["cat", "/etc/resolv.conf"], timeout=t),
                                                            lab, client_name, dns_ip),
                        ("client.exec", "dns.service")))
    checks.append(LabCheck("dns.lookup", 8, "kube-dns knows the Service", client_name,
                        f"{lab.service_fqdn} @{lab.kube_dns_ip}",
                        lambda t: probes.decide_lookup(where.client.run(["nslookup", lab.service_fqdn], timeout=t),
                                                       lab, client_name, svc_ip),
                        ("dns.resolvconf", "coredns", "dns.service", "svc.ip", "net.route")))
    service_needs = ("svc.endpoints", "net.route")
    for id, host, how in (("svc.client.name", lab.service, "short"), ("svc.client.fqdn", lab.service_fqdn, "full")):
        checks.append(_http(id, 8, f"HTTP to the Service by {how} name", lab, client_name, where.client,
                            f"http://{host}/", f"{host}:{lab.service_port}", lab.inv_body, exact=True,
                            pod=f"-l {lab.selector}", needs=("dns.lookup",) + service_needs, service=True,
                            body_fix="invoke app.build, then invoke app.deploy"))
    checks.append(_http("svc.node.ip", 8, "HTTP to the ClusterIP (kube-proxy)", lab, node, where.node,
                        svc_url, f"{svc_ip}:{lab.service_port}", lab.inv_body, exact=True, pod=f"-l {lab.selector}",
                        needs=("node.ssh",) + service_needs, service=True,
                        body_fix="invoke app.build, then invoke app.deploy"))
    name_wait = 4
    checks.append(LabCheck("svc.node.name", 8, "short name unknown on the node (expected)", node,
                        f"{lab.service} (name)",
                        lambda t: probes.decide_node_name(
                            where.node.run(["curl", "-sS", "-m", str(name_wait), "-o", "/dev/null", "-w", "%{remote_ip}",
                                            f"http://{lab.service}/"], timeout=t),
                            lab, name_wait, svc_ip),
                        ("node.ssh",), timeout=name_wait + 4))
    replicas = [from_api.name_of(p) for p in pods]
    count = probes.LB_REQUESTS
    checks.append(LabCheck("svc.lb", 8, "Service balances across replicas", client_name,
                        f"{svc_ip}:{lab.service_port} ×{count}",
                        lambda t: probes.decide_balance(
                            where.client.run(probes.lb_command(svc_url, count), timeout=t),
                            lab, client_name, replicas, count),
                        ("svc.endpoints-match", "deploy.available", "client.exec") + service_needs, timeout=20))
    return nodes.merge(checks, lab, snap, where)


def _http(id, section, title, lab: Lab, source, backend, url, target, expect, *, exact, pod, needs, body_fix,
          service=False) -> LabCheck:
    on_node = source == lab.node
    if on_node:
        def command(t):
            return ["curl", "-sS", "-f", "-m", str(max(int(t) - 1, 1)), url]
    else:
        def command(t):
            return ["wget", "-q", "-O", "-", url]
    ctx = {"source": source, "target": target, "pod": pod, "node": lab.node, "service": lab.service,
           "exec_pod": None if on_node else lab.client_pod}
    if service:
        refused, unreachable = "service-refused", "service-unreachable"
    else:
        refused, unreachable = "http-refused", "pod-unreachable-node" if on_node else "pod-unreachable-pod"

    def run(t):
        if url is None:
            return None
        res = backend.run(command(t), timeout=t)
        return probes.decide_http(res, tool="curl" if on_node else "wget", expect=expect, exact=exact, ctx=ctx,
                                  on_refused=refused, on_unreachable=unreachable, body_fix=body_fix)

    return LabCheck(id, section, title, source, target, run, tuple(needs))
