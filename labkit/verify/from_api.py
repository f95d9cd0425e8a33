"""What the Kubernetes API says: one snapshot of the objects the lab looks at, and the checks on it.

The snapshot holds plain dicts in the API's own JSON shape (what `kubectl get -o json` prints and
what the official client returns with `_preload_content=False`), so the checks are pure functions
that tests feed with the lab transcript's values.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from labkit.kube import errors as kube_errors
from labkit.kube.objects import (CRASH_REASONS, condition, labels_match, master_tainted, missing_images, phase,
                                 ready_count, waiting_reason)
from labkit.kube.objects import name as name_of
from labkit.kube.objects import pod_ready as is_ready
from labkit.verify import hints
from labkit.verify.model import Lab, Outcome, failed, passed
from labkit.verify.probes import short

CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass
class Snapshot:
    version: Optional[dict] = None
    nodes: list = field(default_factory=list)
    pods: dict = field(default_factory=dict)        # namespace → list of pods
    deployment: Optional[dict] = None               # default/can-inventory
    service: Optional[dict] = None                  # default/inv
    endpoints: Optional[dict] = None                # default/inv
    dns_service: Optional[dict] = None              # kube-system/kube-dns
    coredns: Optional[dict] = None                  # kube-system/coredns (Deployment): how many pods it wants
    problem: Optional[tuple] = None                 # (hint key, values) when the API could not be read
    seconds: float = 0.0


# --- reading the API ------------------------------------------------------------------------

def fetch(settings, lab: Lab, timeout: float = 8.0) -> Snapshot:
    """All objects at once (a handful of GETs in parallel, through the API door); never raises."""
    from labkit import kube

    started = time.monotonic()
    snap = Snapshot()
    try:
        api = kube.Api(settings, timeout=(4, timeout))
        snap.version = api.version()  # first, alone: fails fast when the API is down
        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs = {
                "nodes": pool.submit(api.nodes),
                "kube-system": pool.submit(api.pods, "kube-system"),
                lab.namespace: pool.submit(api.pods, lab.namespace),
                "deployment": pool.submit(api.get, "Deployment", lab.namespace, lab.deployment),
                "service": pool.submit(api.get, "Service", lab.namespace, lab.service),
                "endpoints": pool.submit(api.get, "Endpoints", lab.namespace, lab.service),
                "dns": pool.submit(api.get, "Service", "kube-system", "kube-dns"),
                "coredns": pool.submit(api.get, "Deployment", "kube-system", "coredns"),
            }
            got = {k: f.result() for k, f in jobs.items()}
    except Exception as exc:  # one failed `api` check with the right hint, never an exception
        snap.problem = api_problem(exc)
        snap.seconds = time.monotonic() - started
        return snap
    snap.nodes = got["nodes"]
    snap.pods = {ns: got[ns] for ns in ("kube-system", lab.namespace)}
    snap.deployment, snap.service = got["deployment"], got["service"]
    snap.endpoints, snap.dns_service, snap.coredns = got["endpoints"], got["dns"], got["coredns"]
    snap.seconds = time.monotonic() - started
    return snap


def api_problem(exc: Exception) -> tuple:
    """(hint key, values) for what the API door raised."""
    if isinstance(exc, kube_errors.NoKubeconfig):
        return "no-kubeconfig", {"path": exc.path}
    if isinstance(exc, kube_errors.BadKubeconfig):
        return "kubeconfig-bad", {"path": exc.path, "error": exc.message}
    if isinstance(exc, kube_errors.Unauthorized):
        return "api-auth", {"error": f"HTTP {exc.status}"}
    if isinstance(exc, kube_errors.Untrusted):
        key = {"expired": "api-cert-expired", "not-yet-valid": "api-cert-not-yet-valid"}.get(exc.cause, "api-auth")
        return key, {"error": "certificate verify failed"}
    if isinstance(exc, kube_errors.Unreachable):
        return "api-unreachable", {"error": f"{exc.server}: {exc.error}"}
    text = str(getattr(exc, "message", None) or exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return "api-unreachable", {"error": text}


# --- reading objects (the shared readers are in labkit.kube.objects) --------------------------

def pods_with(snap: Snapshot, namespace: str, labels: dict) -> list:
    return [p for p in snap.pods.get(namespace, []) if labels_match(p, labels)
            and not p.get("metadata", {}).get("deletionTimestamp")]


def pod_named(snap: Snapshot, namespace: str, name: str) -> Optional[dict]:
    return next((p for p in snap.pods.get(namespace, []) if name_of(p) == name), None)


def pod_ip(pod: dict) -> Optional[str]:
    return pod.get("status", {}).get("podIP")


def container_state(status: dict) -> str:
    """`CrashLoopBackOff, last exit code 1 (Error)` — the words `kubectl describe` would show."""
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated")
    if "waiting" in state:
        text = state["waiting"].get("reason") or "Waiting"
    elif "terminated" in state:
        t = state["terminated"]
        text = f"terminated: {t.get('reason') or 'exited'}, exit code {t.get('exitCode')}"
    elif "running" in state:
        text = "Running" if status.get("ready") else "Running, not ready"
    else:
        text = "unknown state"
    if last and "terminated" not in state:
        text += f", last exit code {last.get('exitCode')} ({last.get('reason') or 'exited'})"
    return text


def pod_state(pod: dict) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    bad = [s for s in statuses if not s.get("ready")]
    if bad:
        return "; ".join(f"{s.get('name')}: {container_state(s)}" for s in bad)
    scheduled = condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        return scheduled.get("message") or scheduled.get("reason") or "not scheduled"
    return phase(pod)


def pod_problem(lab: Lab, pod: dict, node: str) -> hints.Hint:
    """Why a pod is not Running and Ready, as an instructor would read `kubectl describe pod`."""
    name = name_of(pod)
    for image, reason in missing_images(pod):
        if image == lab.inv_image:
            fix = "invoke app.build, then invoke app.deploy"
        else:
            fix = "invoke vm.provision (loads the bundle's images), then invoke app.deploy"
        return hints.make("image-missing", pod=name, image=image, reason=reason, image_fix=fix)
    for s in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (s.get("state") or {}).get("terminated")
        if waiting_reason(s) in CRASH_REASONS or terminated or (
                not s.get("ready") and (s.get("lastState") or {}).get("terminated")):
            return hints.make("crashloop", pod=name, container=s.get("name"), state=container_state(s), node=node)
    if phase(pod) == "Pending":
        return hints.make("pod-pending", pod=name, reason=pod_state(pod), node=node)
    return hints.make("pod-not-ready", pod=name, phase=phase(pod), state=pod_state(pod), node=node)


# --- the checks -----------------------------------------------------------------------------

def api_reachable(lab: Lab, snap: Snapshot) -> Outcome:
    if snap.problem:
        key, values = snap.problem
        detail = f"no kubeconfig at {values['path']}" if key == "no-kubeconfig" else values.get("error", "")
        return failed(short(detail), hints.make(key, **values))
    found = (snap.version or {}).get("gitVersion", "?")
    if _minor(found) != _minor(lab.kubernetes_version):
        return failed(f"server is {found}", hints.make("api-version", found=found, expected=lab.kubernetes_version))
    return passed(found)


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


def node_of(lab: Lab, snap: Snapshot) -> Optional[dict]:
    return next((n for n in snap.nodes if name_of(n) == lab.node), None)


def node_ready(lab: Lab, snap: Snapshot) -> Outcome:
    node = node_of(lab, snap)
    if node is None:
        known = ", ".join(name_of(n) for n in snap.nodes) or "none"
        return failed(f"no node {lab.node} (registered: {known})", hints.make("node-missing", node=lab.node))
    ready = condition(node, "Ready")
    status, message = ready.get("status"), ready.get("message") or ready.get("reason") or ""
    kubelet = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
    if status == "True":
        return passed(f"Ready, kubelet {kubelet}".rstrip(", "))
    if status == "False" and ("NetworkPluginNotReady" in message or "cni" in message.lower()):
        # weave's own verdict names the cause (not installed, or installed and not ready);
        # the plan makes weave wait for this check, so it is said here, once
        return failed(f"NotReady: {message[:120]}", weave_running(lab, snap).hint or hints.make("cni-missing"))
    if status == "False":
        return failed(f"NotReady: {message[:120]}", hints.make("kubelet-not-ready", node=lab.node, reason=message[:200]))
    return failed(f"Ready is {status or 'missing'}", hints.make("kubelet-down", node=lab.node))


def master_untainted(lab: Lab, snap: Snapshot) -> Outcome:
    node = node_of(lab, snap)
    if node is None:
        return failed(f"no node {lab.node}", hints.make("node-missing", node=lab.node))
    taints = node.get("spec", {}).get("taints") or []
    shown = ", ".join(f"{t.get('key')}:{t.get('effect')}" for t in taints)
    if master_tainted(node):
        return failed(f"taints: {shown}", hints.make("master-taint", node=lab.node))
    return passed(f"other taints: {shown}" if taints else "no taints")


def component_running(component: str):
    labels = {"k8s-app": "kube-proxy"} if component == "kube-proxy" else {"component": component}

    def check(lab: Lab, snap: Snapshot) -> Outcome:
        pods = pods_with(snap, "kube-system", labels)
        if not pods:
            return failed("no pod", hints.make("component-missing", component=component))
        bad = [p for p in pods if not is_ready(p)]
        if bad:
            p = bad[0]
            return failed(f"{name_of(p)}: {pod_state(p)}", hints.make(
                "component-down", component=component, state=pod_state(p), pod=name_of(p), node=lab.node))
        return passed(", ".join(f"{name_of(p)} Running" for p in pods))

    return check


def weave_pods(snap: Snapshot) -> list:
    return pods_with(snap, "kube-system", {"name": "weave-net"})


def weave_running(lab: Lab, snap: Snapshot) -> Outcome:
    pods = weave_pods(snap)
    if not pods:
        return failed("no weave-net pod", hints.make("cni-missing"))
    for p in pods:
        ready, total = ready_count(p)
        if not is_ready(p) or ready < total:
            return failed(f"{name_of(p)} {ready}/{total} {phase(p)}", hints.make(
                "weave-not-ready", ready=f"{ready}/{total}", state=pod_state(p), pod=name_of(p), node=lab.node))
    return passed(", ".join(f"{name_of(p)} {'/'.join(map(str, ready_count(p)))} Running" for p in pods))


def coredns_running(lab: Lab, snap: Snapshot) -> Outcome:
    pods = pods_with(snap, "kube-system", {"k8s-app": "kube-dns"})
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


def kube_dns_service(lab: Lab, snap: Snapshot) -> Outcome:
    svc = snap.dns_service
    if svc is None:
        return failed("no Service kube-system/kube-dns", hints.make("kube-dns-missing"))
    ip = svc.get("spec", {}).get("clusterIP")
    if ip != lab.kube_dns_ip:
        return failed(f"ClusterIP {ip}", hints.make("kube-dns-ip", found=ip, expected=lab.kube_dns_ip))
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in svc.get("spec", {}).get("ports") or [])
    return passed(f"{ip} ({ports})")


def pod_running(name: str):
    """`web` / `client`: Running, Ready, with an address in the pod range."""

    def check(lab: Lab, snap: Snapshot) -> Outcome:
        pod = pod_named(snap, lab.namespace, name)
        if pod is None:
            return failed(f"no pod {name}", hints.make("not-deployed", what=f"pod {name}"))
        if not is_ready(pod):
            return failed(f"{phase(pod)}: {pod_state(pod)}", pod_problem(lab, pod, lab.node))
        ip = pod_ip(pod)
        if not ip or not _in(ip, lab.pod_cidr):
            return failed(f"address {ip}", hints.make("pod-ip-outside", pod=name, ip=ip, cidr=lab.pod_cidr, node=lab.node))
        return passed(f"Running at {ip}")

    return check


def inv_pods(lab: Lab, snap: Snapshot) -> list:
    selector = ((snap.deployment or {}).get("spec", {}).get("selector", {}).get("matchLabels")) or lab.app_labels
    return pods_with(snap, lab.namespace, selector)


def deployment_available(lab: Lab, snap: Snapshot) -> Outcome:
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


def service_ip(lab: Lab, snap: Snapshot) -> Outcome:
    svc = snap.service
    if svc is None:
        return failed(f"no Service {lab.service}", hints.make("svc-missing", service=lab.service))
    spec = svc.get("spec", {})
    ip = spec.get("clusterIP")
    if not ip or ip == "None" or not _in(ip, lab.service_cidr):
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
    return ",".join(f"{k}={v}" for k, v in selector.items()) or "(none)"


def service_has_endpoints(lab: Lab, snap: Snapshot) -> Outcome:
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


def endpoints_match_pods(lab: Lab, snap: Snapshot) -> Outcome:
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


def _in(ip: str, network) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False
