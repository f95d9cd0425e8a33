"""Reading API objects: the one definition of each fact cluster, app and verify decide on.

Objects are the API server's own JSON (dicts), what `kubectl get -o json` prints; nothing here
talks to a server, so tests feed the lab transcript's objects.
"""
from __future__ import annotations

import ipaddress
from typing import Optional

MASTER_TAINT = "node-role.kubernetes.io/master"  # kubeadm 1.15 puts it on the control-plane node, NoSchedule
# Reasons kubectl's STATUS column shows for a container that cannot start.
IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
CRASH_REASONS = ("CrashLoopBackOff", "RunContainerError", "CreateContainerError", "CreateContainerConfigError",
                 "Error")
DNS_OFFSET = 10  # kubeadm gives kube-dns the 10th address of the service subnet (10.96.0.10)
# kube-system's pods by their labels: kubeadm 1.15's CoreDNS addon, Weave Net 2.8.1's DaemonSet
COREDNS = {"k8s-app": "kube-dns"}
WEAVE = {"name": "weave-net"}
KUBE_PROXY = {"k8s-app": "kube-proxy"}


def name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "?")


def labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def selector(wanted: dict) -> str:
    """Labels as kubectl's `-l` takes them: app=inv,tier=web."""
    return ",".join(f"{k}={v}" for k, v in wanted.items())


def labels_match(obj: dict, wanted: dict) -> bool:
    have = labels(obj)
    return all(have.get(k) == v for k, v in wanted.items())


def condition(obj: dict, kind: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


# --- nodes -----------------------------------------------------------------------------------

def node_ready(node: dict) -> bool:
    return condition(node, "Ready").get("status") == "True"


def ready_message(node: dict) -> str:
    """What the Ready condition says (e.g. the kubelet's NetworkPluginNotReady line)."""
    cond = condition(node, "Ready")
    return (cond.get("message") or cond.get("reason") or "").strip()


def master_tainted(node: dict) -> bool:
    """Carries the control-plane taint that keeps pods off it."""
    return any(t.get("key") == MASTER_TAINT and t.get("effect") == "NoSchedule"
               for t in (node.get("spec") or {}).get("taints") or [])


def internal_ip(node: dict) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address", "")
    return ""


# --- pods ------------------------------------------------------------------------------------

def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase", "Pending")


def containers(pod: dict) -> list[dict]:
    return (pod.get("status") or {}).get("containerStatuses") or []


def init_containers(pod: dict) -> list[dict]:
    return (pod.get("status") or {}).get("initContainerStatuses") or []


def ready_count(pod: dict) -> tuple[int, int]:
    """(ready containers, containers), kubectl's READY column."""
    spec = (pod.get("spec") or {}).get("containers") or []
    statuses = containers(pod)
    return sum(1 for c in statuses if c.get("ready")), max(len(spec), len(statuses))


def pod_ip(pod: dict) -> Optional[str]:
    return (pod.get("status") or {}).get("podIP")


def node_name(pod: dict) -> Optional[str]:
    """The node the scheduler put the pod on (None while Pending)."""
    return (pod.get("spec") or {}).get("nodeName")


def terminating(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_ready(pod: dict) -> bool:
    """Running, and Ready: the kubelet's Ready condition when the pod has one, else every container ready."""
    if phase(pod) != "Running" or terminating(pod):
        return False
    ready = condition(pod, "Ready")
    if ready:
        return ready.get("status") == "True"
    have, total = ready_count(pod)
    return total > 0 and have == total


def waiting_reason(status: dict) -> str:
    return ((status.get("state") or {}).get("waiting") or {}).get("reason") or ""


def container_reason(pod: dict) -> str:
    """The first waiting/terminated reason of its (init) containers, as kubectl's STATUS column shows it."""
    for status in init_containers(pod) + containers(pod):
        state = status.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason:
                return reason
    return ""


def pod_reason(pod: dict) -> str:
    """kubectl's STATUS column: Terminating, a container's reason, else the phase."""
    if terminating(pod):
        return "Terminating"
    return container_reason(pod) or phase(pod)


def container_state(status: dict) -> str:
    """`CrashLoopBackOff, last exit code 1 (Error)`: one container's state in the words `kubectl describe` shows."""
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
    """Why a pod is not Ready, in `kubectl describe` words: its containers that are not ready, else why
    it is not scheduled, else its phase."""
    bad = [s for s in containers(pod) if not s.get("ready")]
    if bad:
        return "; ".join(f"{s.get('name')}: {container_state(s)}" for s in bad)
    scheduled = condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        return scheduled.get("message") or scheduled.get("reason") or "not scheduled"
    return phase(pod)


def missing_images(pod: dict) -> list[tuple[str, str]]:
    """[(image, reason)] of containers that cannot start because their image is not on the node."""
    return [(c.get("image") or "?", waiting_reason(c)) for c in init_containers(pod) + containers(pod)
            if waiting_reason(c) in IMAGE_REASONS]


def crashing(pod: dict) -> bool:
    return container_reason(pod) in CRASH_REASONS


# --- services --------------------------------------------------------------------------------

def kube_dns_ip(service_network: ipaddress.IPv4Network) -> str:
    """The ClusterIP kubeadm gives kube-dns."""
    return str(service_network[DNS_OFFSET])


def cluster_ip(service: Optional[dict]) -> Optional[str]:
    return ((service or {}).get("spec") or {}).get("clusterIP")
