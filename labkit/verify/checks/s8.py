"""Section 8 of the lab: the inv Service. Its ClusterIP and ports, endpoints that are the Ready inv pods,
client's resolv.conf and kube-dns's answer, HTTP to the Service by short and full name from client
and by ClusterIP from the node, the bare name unknown on the node, and requests spread across replicas.

Traffic from a pod to any Service (kube-dns included) is DNATed on the node and then routed into the
pod range, so every Service probe needs the node's weave route (net.route), while direct pod-to-pod
traffic (section 6) does not.
"""
from __future__ import annotations

from labkit.backends import TIMEOUT_EXIT, CommandResult
from labkit.kube.objects import COREDNS, cluster_ip, pod_ip
from labkit.kube.objects import selector as selector_text
from labkit.kube.objects import name as name_of
from labkit.kube.objects import pod_ready as is_ready
from labkit.text import short
from labkit.verify import hints, parse
from labkit.verify.checks import Inputs
from labkit.verify.checks.s6 import in_network
from labkit.verify.from_api import Snapshot, inv_pods, pods_with
from labkit.verify.model import Lab, LabCheck, Result, failed, passed
from labkit.verify.probes import LB_REQUESTS, http_check, lb_command, transport

SECTION = 8
NAME_WAIT = 4  # seconds curl waits for the bare name on the node (the lab's `curl inv` that hangs)


def checks(x: Inputs) -> list[LabCheck]:
    lab, snap, where, node, client = x.lab, x.snap, x.where, x.lab.node, x.lab.client_pod
    svc_ip = cluster_ip(snap.service) or "?"
    svc_url = f"http://{svc_ip}:{lab.service_port}/"
    dns_ip = cluster_ip(snap.dns_service)  # what the kubelet must write into the pods' resolv.conf
    pods = sorted(inv_pods(lab, snap), key=name_of)
    replicas, to_replicas = [name_of(p) for p in pods], x.nodes_of(pods)
    through_service = ("svc.endpoints", "net.route")
    body_fix = "invoke app.build, then invoke app.deploy"
    out = [
        x.api("svc.ip", SECTION, f"Service {lab.service} has a ClusterIP, {lab.service_port} → {lab.target_port}",
              service_ip),
        x.api("svc.endpoints", SECTION, f"{lab.service} has ready endpoints", service_has_endpoints, ("svc.ip",)),
        x.api("svc.endpoints-match", SECTION, f"endpoints = the inv pods on {lab.target_port}", endpoints_match_pods,
              ("svc.endpoints",)),
        LabCheck("dns.resolvconf", f"{client}'s resolv.conf uses kube-dns",
                 lambda t: decide_resolv_conf(where.client.run(["cat", "/etc/resolv.conf"], timeout=t), lab, client,
                                              dns_ip),
                 ("client.exec", "dns.service"), section=SECTION, source=client, target="/etc/resolv.conf"),
        LabCheck("dns.lookup", "kube-dns knows the Service",
                 lambda t: decide_lookup(where.client.run(["nslookup", lab.service_fqdn], timeout=t), lab, client,
                                         svc_ip),
                 ("dns.resolvconf", "coredns", "dns.service", "svc.ip", "net.route"), section=SECTION, source=client,
                 target=f"{lab.service_fqdn} @{lab.kube_dns_ip}", from_node=x.client_node,
                 to_nodes=x.nodes_of(pods_with(snap, "kube-system", COREDNS))),
    ]
    for id, host, how in (("svc.client.name", lab.service, "short"), ("svc.client.fqdn", lab.service_fqdn, "full")):
        out.append(http_check(id, SECTION, f"HTTP to the Service by {how} name", lab, client, where.client,
                              f"http://{host}/", f"{host}:{lab.service_port}", lab.inv_body, exact=True,
                              pod=f"-l {lab.selector}", needs=("dns.lookup",) + through_service, service=True,
                              body_fix=body_fix, from_node=x.client_node, to_nodes=to_replicas))
    out += [
        http_check("svc.node.ip", SECTION, "HTTP to the ClusterIP (kube-proxy)", lab, node, where.node, svc_url,
                   f"{svc_ip}:{lab.service_port}", lab.inv_body, exact=True, pod=f"-l {lab.selector}",
                   needs=("node.ssh",) + through_service, service=True, body_fix=body_fix, from_node=node,
                   to_nodes=to_replicas),
        LabCheck("svc.node.name", "short name unknown on the node (expected)",
                 lambda t: decide_node_name(where.node.run(
                     ["curl", "-sS", "-m", str(NAME_WAIT), "-o", "/dev/null", "-w", "%{remote_ip}",
                      f"http://{lab.service}/"], timeout=t), lab, NAME_WAIT, svc_ip),
                 ("node.ssh",), timeout=NAME_WAIT + 4, section=SECTION, source=node, target=f"{lab.service} (name)"),
        LabCheck("svc.lb", "Service balances across replicas",
                 lambda t: decide_balance(where.client.run(lb_command(svc_url, LB_REQUESTS), timeout=t), lab, client,
                                          replicas, LB_REQUESTS),
                 ("svc.endpoints-match", "deploy.available", "client.exec") + through_service, timeout=20,
                 section=SECTION, source=client, target=f"{svc_ip}:{lab.service_port} ×{LB_REQUESTS}",
                 from_node=x.client_node, to_nodes=to_replicas),
    ]
    return out


def service_ip(lab: Lab, snap: Snapshot) -> Result:
    svc = snap.service
    if svc is None:
        return failed(f"no Service {lab.service}", hints.make("svc-missing", service=lab.service))
    spec = svc.get("spec", {})
    ip = spec.get("clusterIP")
    if not ip or ip == "None" or not in_network(ip, lab.service_cidr):
        return failed(f"ClusterIP {ip}", hints.make("svc-ip-outside", service=lab.service, ip=ip, cidr=lab.service_cidr))
    ports = spec.get("ports") or []
    mapped = ", ".join(f"{p.get('port')}→{p.get('targetPort')}" for p in ports) or "no ports"
    if not any(p.get("port") == lab.service_port and str(p.get("targetPort")) == str(lab.target_port) for p in ports):
        return failed(f"ports {mapped}", hints.make("svc-ports", service=lab.service, found=mapped))
    return passed(f"{ip}:{lab.service_port} → {lab.target_port}")


def endpoint_addresses(snap: Snapshot, ready: bool = True) -> list:
    """[(ip, port, pod name)] of the Service's endpoints (not-ready ones with ready=False)."""
    key = "addresses" if ready else "notReadyAddresses"
    out = []
    for subset in (snap.endpoints or {}).get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for a in subset.get(key) or []:
            for port in ports:
                out.append((a.get("ip"), port, (a.get("targetRef") or {}).get("name")))
    return out


def service_selector(snap: Snapshot) -> dict:
    """The Service's own selector (what the endpoints controller uses), not the Deployment's."""
    return ((snap.service or {}).get("spec") or {}).get("selector") or {}


def shown_selector(selector: dict) -> str:
    return selector_text(selector) or "(none)"


def service_has_endpoints(lab: Lab, snap: Snapshot) -> Result:
    ready = endpoint_addresses(snap)
    if ready:
        return passed(f"{len(ready)} ready: " + ", ".join(f"{ip}:{port}" for ip, port, _ in ready))
    selector = service_selector(snap)
    values = {"service": lab.service, "selector": shown_selector(selector), "node": lab.node}
    selected = pods_with(snap, lab.namespace, selector) if selector else []
    if endpoint_addresses(snap, ready=False) or (selected and not any(is_ready(p) for p in selected)):
        return failed("no ready endpoints", hints.make("endpoints-not-ready", **values))
    if not selected:
        return failed(f"no endpoints; no pod has {values['selector']}", hints.make("endpoints-no-pods", **values))
    names = ", ".join(f"{name_of(p)} ({pod_ip(p)}:{lab.target_port})" for p in selected if is_ready(p))
    return failed("no endpoints", hints.make("endpoint-missing", missing=names, **values))


def endpoints_match_pods(lab: Lab, snap: Snapshot) -> Result:
    ready_pods = {pod_ip(p): name_of(p) for p in inv_pods(lab, snap) if is_ready(p) and pod_ip(p)}
    want = {(ip, lab.target_port) for ip in ready_pods}
    have = {(ip, port) for ip, port, _ in endpoint_addresses(snap)}
    values = {"service": lab.service, "selector": shown_selector(service_selector(snap)), "node": lab.node,
              "deployment": lab.deployment, "target_port": lab.target_port}
    missing, extra = sorted(want - have), sorted(have - want)
    if {ip for ip, _ in missing} & {ip for ip, _ in extra}:  # the right pods on the wrong port
        found = ", ".join(f"{ip}:{port}" for ip, port in extra)
        return failed(f"endpoints on {found}", hints.make("svc-ports", service=lab.service, found=f"to {found}"))
    if missing:
        names = ", ".join(f"{ready_pods[ip]} ({ip}:{port})" for ip, port in missing)
        return failed(f"missing {names}", hints.make("endpoint-missing", missing=names, **values))
    if extra:
        names = ", ".join(f"{ip}:{port}" for ip, port in extra)
        return failed(f"unexpected {names}", hints.make("endpoint-extra", extra=names, **values))
    return passed(", ".join(f"{ip}:{port}" for ip, port in sorted(have)) + " = the Ready inv pods")


def decide_resolv_conf(res: CommandResult, lab: Lab, pod: str, dns_ip: str) -> Result:
    """dns_ip: the kube-dns Service's ClusterIP as the API shows it."""
    problem = transport(res, pod, lab.node, pod)
    if problem:
        return problem
    if not res.ok:
        return failed(short(res.stderr), hints.make("resolv-unreadable", pod=pod, error=short(res.stderr, 120), node=lab.node))
    conf = parse.resolv_conf(res.stdout)
    found_ns = conf.nameservers[0] if conf.nameservers else "none"
    detail = f"nameserver {found_ns}; search {' '.join(conf.search) or '-'}; options {' '.join(conf.options) or '-'}"
    values = {"pod": pod, "node": lab.node, "service": lab.service}
    if found_ns != dns_ip:
        return failed(detail, hints.make("resolv-nameserver", found=found_ns, expected=dns_ip, **values))
    if not conf.search or conf.search[0] != lab.search_first:
        return failed(detail, hints.make("resolv-search", found=" ".join(conf.search) or "nothing",
                                         expected=lab.search_first, **values))
    return passed(detail)


def decide_lookup(res: CommandResult, lab: Lab, pod: str, service_ip: str) -> Result:
    problem = transport(res, pod, lab.node, pod)
    if problem:
        return problem
    found = parse.nslookup(res.stdout + "\n" + res.stderr)
    server = found.server or lab.kube_dns_ip
    values = {"name": lab.service_fqdn, "server": server, "node": lab.node, "service": lab.service,
              "domain": lab.dns_domain, "source": pod, "pod": pod}
    if service_ip in found.addresses:
        return passed(f"{lab.service_fqdn} → {service_ip} (server {server})")
    if found.addresses:
        got = ", ".join(found.addresses)
        return failed(f"answered {got}", hints.make("dns-wrong-answer", got=got, expected=service_ip, **values))
    error = short(found.errors[0] if found.errors else parse.first_line(res.stderr) or f"exit code {res.exit_code}", 120)
    kind = parse.nslookup_failure(found, res.exit_code)
    if kind == parse.TIMEOUT:
        return failed(error, hints.make("dns-down", error=error, **values))
    if kind == parse.RESOLVE:
        return failed(error, hints.make("dns-nxdomain", **values))
    return failed(error, hints.make("unexpected", error=error, **values))


def decide_node_name(res: CommandResult, lab: Lab, seconds: float, service_ip: str | None = None) -> Result:
    """From the node, the bare Service name must NOT resolve to the Service: the lab's `curl inv` that
    hangs or fails. A DHCP search domain plus a resolver that answers every name (hotel and campus
    networks) resolves it elsewhere (curl -w %{remote_ip}): the node still does not use kube-dns."""
    problem = transport(res, lab.node, lab.node)
    if problem:
        return problem
    why = "only pods use kube-dns; the node's resolv.conf does not"
    text = res.stderr.lower()
    if res.exit_code == 6:
        return passed(f"not resolved, as in the lab: {why}")
    if res.exit_code == 28 and "resolv" in text:  # curl's own resolver timeout (-m), not a stalled SSH
        return passed(f"no answer within {seconds:g}s (the lab's long wait): {why}")
    if res.exit_code == TIMEOUT_EXIT:
        return failed(short(res.stderr), hints.make("timeout", seconds=f"{res.seconds:.0f}", source=lab.node))
    if res.exit_code == 127:
        return failed("curl is missing", hints.make("tool-missing", tool="curl", source=lab.node,
                                                     tool_fix="invoke vm.provision"))
    address = res.stdout.strip()
    if address and address != service_ip:
        return passed(f"resolves to {address}, not to the Service ({service_ip or 'unknown'}): the laptop's network "
                      f"answers the name; {why}")
    found = "curl got an answer" if res.ok else short(parse.first_line(res.stderr) or f"curl exit {res.exit_code}", 80)
    return failed(f"resolved on the node: {found}", hints.make("node-resolves-cluster", service=lab.service,
                                                               found=found, node=lab.node))


def decide_balance(res: CommandResult, lab: Lab, pod: str, replicas: list, count: int) -> Result:
    """Repeated requests to the ClusterIP: did every inv replica answer some (its X-Served-By)?"""
    problem = transport(res, pod, lab.node, pod)
    if problem:
        return problem
    output = res.stdout + "\n" + res.stderr
    seen = parse.served_by(output)
    errors = parse.wget_errors(output)
    tally = {}
    for name in seen:
        tally[name] = tally.get(name, 0) + 1
    shown = ", ".join(f"{n} ×{k}" for n, k in sorted(tally.items())) or "no X-Served-By header"
    values = {"service": lab.service, "selector": lab.selector, "node": lab.node, "count": count}
    if errors or (not res.ok and not seen):
        error = short(errors[0] if errors else parse.first_line(res.stderr) or f"exit code {res.exit_code}", 100)
        bad = len(errors) or count - len(seen)
        return failed(f"{bad}/{count} failed; {shown}", hints.make("lb-errors", bad=bad, error=error, **values))
    if not seen:
        return failed(f"{count} answers, {shown}", hints.make("lb-no-header"))
    missing = sorted(set(replicas) - set(tally))
    if not missing:
        return passed(f"{len(seen)} requests: {shown}")
    return failed(f"{shown}; never {', '.join(missing)}",
                  hints.make("lb-one-replica", pod=", ".join(sorted(tally)), missing=", ".join(missing), **values))
