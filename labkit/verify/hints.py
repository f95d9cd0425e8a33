"""What an instructor would say when a check fails: the likely cause, and the command that fixes it.

Each hint has a stable key (tests and the JSON report use it) and two templates filled with the
values of the failing check (node name, pod, address...). Commands that must run on the node are
written as `invoke vm.ssh --command "..."` so a student can paste them on the laptop.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

from labkit import checks
from labkit.kube.objects import COREDNS, KUBE_PROXY, MASTER_TAINT, WEAVE, selector


@dataclass(frozen=True)
class Hint:
    key: str
    cause: str
    fix: str


def _on_node(cmd: str) -> str:
    return 'invoke vm.ssh --command "%s"' % cmd


_COREDNS, _WEAVE, _KUBE_PROXY = selector(COREDNS), selector(WEAVE), selector(KUBE_PROXY)

CATALOG = {
    # --- reaching the lab ----------------------------------------------------------------------
    "no-kubeconfig": (
        "there is no exported kubeconfig at {path}: the cluster was not initialised from this laptop yet",
        "invoke cluster.init"),
    "kubeconfig-bad": (
        "the kubeconfig at {path} cannot be used: {error}",
        "invoke cluster.init (it exports it again)"),
    "api-unreachable": (
        "nothing answers at the API server ({error}): the VM is stopped or kube-apiserver is down",
        "invoke vm.up, then invoke cluster.init"),
    "api-auth": (
        "the API server rejects the exported credentials ({error}): the kubeconfig belongs to an "
        "earlier cluster (the VM was rebuilt)",
        "invoke cluster.init (it exports a fresh .labkit/kubeconfig)"),
    "api-cert-expired": (
        "the API server's certificate has expired ({error}): kubeadm's certificates last one year (an old cluster "
        "or snapshot), or this laptop's clock is ahead",
        "check the laptop's date and time; if they are right: invoke cluster.reset, then invoke cluster.init"),
    "api-cert-not-yet-valid": (
        "the API server's certificate is not valid yet ({error}): this laptop's clock is behind the VM's",
        "set the laptop's date and time right (automatic time), then invoke cluster.init"),
    "api-version": (
        "the API server runs {found}, but settings expect {expected}: the kubeconfig points at "
        "another cluster",
        "invoke cluster.init"),
    "node-unreachable": (
        "the laptop cannot run commands on node {node} over SSH ({error}): the VM is not running, "
        "or it was recreated",
        "invoke vm.up"),
    # --- the node and the control plane ------------------------------------------------------
    "node-missing": (
        "node {node} is not registered with the API server: kubeadm init has not run on it",
        "invoke cluster.init"),
    "cni-missing": (
        "no pod network (CNI) is installed: the kubelet reports NetworkPluginNotReady, so the node "
        "stays NotReady and CoreDNS stays Pending (the lab's section 5)",
        "invoke cluster.init (it applies Weave Net)"),
    "kubelet-not-ready": (
        "the kubelet reports node {node} not Ready: {reason}",
        _on_node("sudo journalctl -u kubelet -n 50 --no-pager")),
    "kubelet-down": (
        "the kubelet on {node} stopped reporting (node condition Ready is Unknown)",
        _on_node("sudo systemctl restart kubelet")),
    "master-taint": (
        f"the master still carries the taint {MASTER_TAINT}:NoSchedule, so no "
        "workload can be scheduled on this single-node cluster",
        _on_node(f"kubectl taint nodes --all {MASTER_TAINT}-")),
    "component-missing": (
        "{component} has no pod in kube-system: kubeadm init did not finish (control-plane static "
        "pods come from /etc/kubernetes/manifests, kube-proxy is a DaemonSet kubeadm adds)",
        "invoke cluster.init"),
    "component-down": (
        "{component} is not running: {state}",
        _on_node("kubectl -n kube-system logs {pod}")),
    # --- networking ----------------------------------------------------------------------------
    "weave-not-ready": (
        "weave-net is {ready} ready ({state}): the weave container cannot set up the pod network",
        _on_node("kubectl -n kube-system logs {pod} -c weave")),
    "coredns-pending": (
        "CoreDNS is Pending: {reason}",
        _on_node("kubectl -n kube-system describe pod -l " + _COREDNS)),
    "coredns-replicas": (
        "only {found} of the {expected} CoreDNS pods its Deployment asks for exist: a deleted pod "
        "was not replaced (kube-controller-manager runs the ReplicaSet that recreates it)",
        _on_node("kubectl -n kube-system rollout restart deployment coredns")),
    "coredns-crash": (
        "CoreDNS keeps restarting ({state}); the usual cause is a forwarding loop: the node's "
        "resolv.conf names a loopback resolver (127.x) and CoreDNS forwards to itself",
        "invoke vm.provision (writes a resolv.conf without loopback), then "
        + _on_node("kubectl -n kube-system delete pod -l " + _COREDNS)),
    "kube-dns-missing": (
        "the kube-dns Service does not exist: kubeadm's CoreDNS addon was not applied",
        "invoke cluster.init"),
    "kube-dns-ip": (
        "kube-dns has ClusterIP {found}, but the kubelet tells pods to use {expected} (the 10th "
        "address of network.service_cidr)",
        "invoke cluster.reset, then invoke cluster.init (the service range is fixed at init)"),
    "route-missing": (
        "the node has no route for the pod range {cidr} via the weave bridge, so it cannot reach "
        "any pod, and Service traffic it forwards to pods is lost (weave adds this route when it "
        "creates the bridge)",
        _on_node("sudo ip route replace {cidr} dev weave")),
    "route-wrong-dev": (
        "the pod range {cidr} is routed via {dev}, not weave: another bridge or CNI claims the pod "
        "addresses",
        _on_node("sudo ip route replace {cidr} dev weave")),
    # --- pods ----------------------------------------------------------------------------------
    "not-deployed": (
        "{what} does not exist: the lab's workloads are not deployed",
        "invoke app.deploy"),
    "image-missing": (
        "{pod} cannot start: image {image} is not on the node ({reason}) and the pull policy "
        "forbids downloading it",
        "{image_fix}"),
    "crashloop": (
        "{pod}'s container {container} keeps exiting ({state})",
        _on_node("kubectl logs {pod} --previous")),
    "deploy-replicas": (
        "{deployment} is scaled to {found} replicas; the lab runs {expected}, and load balancing needs "
        "at least two",
        "invoke app.deploy (re-applies manifests/deploy.yaml)"),
    "pod-pending": (
        "{pod} is Pending: {reason}",
        _on_node("kubectl describe pod {pod}")),
    "pod-not-ready": (
        "{pod} is {phase} but not Ready ({state})",
        _on_node("kubectl describe pod {pod}")),
    "pod-ip-outside": (
        "{pod} got address {ip}, outside the pod range {cidr}: the kubelet did not use the CNI "
        "network (Docker's bridge handed out the address)",
        "invoke cluster.init (kubelet --network-plugin=cni), then "
        + _on_node("kubectl delete pod {pod}")),
    "exec-failed": (
        "kubectl exec into {pod} failed on the node: {error}",
        _on_node("kubectl get pod {pod} -o wide")),
    "exec-no-kubeconfig": (
        "kubectl on the node has no kubeconfig ({error}): the lab's section 4 step "
        "(copy admin.conf to ~/.kube/config) was not done",
        "invoke cluster.init"),
    # --- HTTP through the pod network ----------------------------------------------------------
    "http-refused": (
        "nothing listens on {target}: the container in {pod} is not serving on that port",
        _on_node("kubectl logs {pod}")),
    "pod-unreachable-node": (
        "the node cannot reach {target} although the weave route exists ({error}): the pod is not "
        "attached to the weave bridge, or weave's data path is broken",
        _on_node("kubectl -n kube-system logs -l " + _WEAVE + " -c weave")),
    "pod-unreachable-pod": (
        "{source} cannot reach {target} ({error}): pod-to-pod traffic on the weave network is broken",
        _on_node("kubectl -n kube-system logs -l " + _WEAVE + " -c weave")),
    "wrong-body": (
        "{target} answered, but not with {expected}: got {got}",
        "{body_fix}"),
    "http-error": (
        "{target} answered with an HTTP error: {error}",
        _on_node("kubectl logs {pod}")),
    "tool-missing": (
        "{tool} is not installed on {source}",
        "{tool_fix}"),
    # --- the Service and DNS -------------------------------------------------------------------
    "svc-missing": (
        "Service {service} does not exist",
        "invoke app.deploy"),
    "svc-ports": (
        "Service {service} maps {found}; the lab's maps TCP 80 to targetPort 8080",
        "invoke app.deploy (re-applies manifests/service.yaml)"),
    "svc-ip-outside": (
        "Service {service} has ClusterIP {ip}, outside network.service_cidr {cidr}: the cluster was "
        "initialised with another service range",
        "invoke cluster.reset, then invoke cluster.init"),
    "endpoints-not-ready": (
        "{service} has no ready endpoints: pods match its selector {selector} but none is Ready",
        _on_node("kubectl get pods -l {selector} -o wide")),
    "endpoints-no-pods": (
        "{service} has no endpoints: no pod carries the selector's labels {selector}",
        _on_node("kubectl get pods --show-labels") + ", then invoke app.deploy"),
    "endpoint-missing": (
        "{missing} is Ready but not an endpoint of {service}: its labels do not match the selector "
        "{selector}, or kube-controller-manager is not updating endpoints",
        _on_node("kubectl describe endpoints {service}")),
    "endpoint-extra": (
        "{service}'s endpoints include {extra}, which is not a Ready {deployment} pod on "
        "{target_port}: another pod carries the selector's labels, or the targetPort is wrong",
        _on_node("kubectl get pods -l {selector} -o wide --show-labels")),
    "resolv-unreadable": (
        "cannot read /etc/resolv.conf in {pod}: {error}",
        _on_node("kubectl exec {pod} -- cat /etc/resolv.conf")),
    "resolv-nameserver": (
        "{pod}'s resolv.conf names nameserver {found}, not kube-dns {expected}: the kubelet writes it "
        "from its clusterDNS setting unless the pod asks for another dnsPolicy",
        _on_node("kubectl delete pod {pod}") + ", then invoke app.deploy (recreates it)"),
    "resolv-search": (
        "{pod}'s resolv.conf searches '{found}'; it must start with {expected} so that the short "
        "name {service} completes to the Service's name",
        _on_node("kubectl delete pod {pod}") + ", then invoke app.deploy (recreates it)"),
    "dns-down": (
        "nothing answers DNS at kube-dns {server} ({error}): CoreDNS is not serving, or kube-proxy "
        "does not forward the kube-dns Service to it",
        _on_node("kubectl -n kube-system rollout restart deployment coredns")),
    "dns-nxdomain": (
        "kube-dns answers but does not know {name}: the Service is missing, or the cluster's DNS "
        "domain is not {domain}",
        _on_node("kubectl get service {service} -o wide")),
    "dns-wrong-answer": (
        "{name} resolves to {got}, not the Service's ClusterIP {expected}",
        _on_node("kubectl -n kube-system rollout restart deployment coredns")),
    "name-not-found": (
        "{source} cannot resolve {name} ({error}) although kube-dns answers for the Service: the "
        "resolver in the pod does not complete the name",
        _on_node("kubectl exec {source} -- cat /etc/resolv.conf")),
    "service-refused": (
        "the Service address {target} refuses connections: kube-proxy rejects Services without "
        "ready endpoints, or targetPort points at a closed port",
        _on_node("kubectl describe service {service}")),
    "service-unreachable": (
        "{target} does not answer ({error}): kube-proxy's rules do not forward the Service",
        _on_node("kubectl -n kube-system delete pod -l " + _KUBE_PROXY)
        + " (its DaemonSet recreates it and rewrites the rules)"),
    "node-resolves-cluster": (
        "the node resolves the bare name {service} ({found}); in the lab it does not, because only "
        "pods use kube-dns. A node that uses kube-dns makes CoreDNS forward to itself",
        "invoke vm.provision (restores the node's own resolv.conf)"),
    "lb-one-replica": (
        "all {count} requests through the Service were answered by {pod}, never by {missing}, "
        "although the API lists it as an endpoint: kube-proxy's rules for the Service are stale",
        _on_node("kubectl -n kube-system delete pod -l " + _KUBE_PROXY)
        + " (its DaemonSet recreates it and rewrites the rules)"),
    "lb-errors": (
        "{bad} of {count} requests through the Service failed ({error}): kube-proxy sends some "
        "requests to a backend that does not answer",
        _on_node("kubectl get endpoints {service}; kubectl get pods -l {selector} -o wide")),
    "lb-no-header": (
        "the inventory service answers without the X-Served-By header: the image is older than "
        "this kit's inv/app.py",
        "invoke app.build, then invoke app.deploy"),
    # --- several nodes (labkit/verify/checks/multinode.py) -------------------------------------
    "master-untainted": (
        f"the master {{node}} has no taint {MASTER_TAINT}:NoSchedule although workers "
        "exist and master_runs_pods is off: the lab's pods may land on the control plane",
        _on_node(f"kubectl taint nodes {{node}} {MASTER_TAINT}=:NoSchedule")),
    "worker-missing": (
        "worker {node} is not registered with the API server: it has not joined the cluster",
        "invoke cluster.join --node {node}"),
    "worker-not-ready": (
        "the kubelet on worker {node} reports it not Ready: {reason}",
        'invoke vm.ssh --node {node} --command "sudo journalctl -u kubelet -n 50 --no-pager"'),
    "node-ip-wrong": (
        "node {node} reports InternalIP {found}, not its host-only address {expected}: the kubelet "
        "picked another interface (10.0.2.15 is VirtualBox's NAT address, the same on every VM), so "
        "the other nodes cannot reach it there",
        "invoke vm.provision --node {node} --step kubernetes, then invoke cluster.reset and invoke cluster.init"),
    "weave-missing-on": (
        "no weave-net pod runs on {node}: the DaemonSet has not placed one there, so pods on {node} "
        "have no network",
        _on_node("kubectl -n kube-system get pods -l " + _WEAVE + " -o wide")),
    "weave-not-ready-on": (
        "weave-net on {node} is {ready} ready ({state})",
        _on_node("kubectl -n kube-system logs {pod} -c weave")),
    "weave-status-unreadable": (
        "weave's status on {node} cannot be read ({error}): the weave router is not running there",
        _on_node("kubectl -n kube-system get pods -l " + _WEAVE + " -o wide")),
    "weave-peer-down": (
        "weave on {node} has no established connection to {peer} ({peer_ip}): {error}. The overlay "
        "needs {ports} open between the nodes on the host-only network",
        'invoke vm.ssh --node {node} --command "curl -s http://127.0.0.1:6784/status/connections"'),
    "xnode-unreachable": (
        "{source} on {src_node} cannot reach {pod} at {target} on {dst_node} ({error}): pod traffic "
        "does not cross from {src_node} to {dst_node} over weave",
        'invoke vm.ssh --node {src_node} --command "ip route; curl -s http://127.0.0.1:6784/status/connections"'),
    "dns-down-node": (
        "{pod} on {node} gets no DNS answer from kube-dns {server} ({error}): Service traffic from "
        "{node} does not reach CoreDNS (kube-proxy's rules on {node}, or the overlay to CoreDNS's node)",
        _on_node("kubectl -n kube-system delete pod -l " + _KUBE_PROXY + " --field-selector spec.nodeName={node}")
        + " (its DaemonSet recreates it and rewrites the rules)"),
    "svc-one-node": (
        "every ready {service} replica runs on {on_node}, so the Service is never answered from "
        "another node",
        _on_node("kubectl delete pod -l {selector}") + " (the Deployment recreates them, spread across nodes)"),
    "svc-remote-silent": (
        "{count} requests from {source} were answered only by replicas on {answered}, never by those "
        "on {missing} ({error}): Service traffic does not cross to {missing}",
        'invoke vm.ssh --node {first} --command "curl -s http://127.0.0.1:6784/status/connections"'),
    # --- anything else -------------------------------------------------------------------------
    "timeout": (
        "no answer within {seconds}s from {source}",
        "run invoke verify again; if it persists, invoke vm.up (the VM may be overloaded or paused)"),
    "unexpected": (
        "the probe failed in an unexpected way: {error}",
        "run the probe by hand on {source} and compare with the lab's output"),
}


class _Blank(dict):
    def __missing__(self, key):  # a template value the caller did not know: leave a visible marker
        return "{" + key + "?}"


def make(key: str, **values) -> Hint:
    cause, fix = CATALOG[key]
    fmt = string.Formatter()
    ctx = _Blank({k: v for k, v in values.items() if v is not None})
    return Hint(key, fmt.vformat(cause, (), ctx), fmt.vformat(fix, (), ctx))


def unexpected(check, error: str) -> checks.Result:
    """What verify says of a check that raised, returned nothing or overran (checks.run's `unexpected`)."""
    if error == f"no answer within {check.timeout:g}s":
        hint = make("timeout", seconds=f"{check.timeout:g}", source=check.source)
    else:
        hint = make("unexpected", error=error, source=check.source)
    return checks.failed(error, hint.cause, hint.fix, hint.key)
