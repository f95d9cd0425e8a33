"""Waiting for the lab's workloads, and saying why when they don't come up.

Done means: the Deployment rolled out the way `kubectl rollout status` judges it (new spec observed,
every replica updated, no old pods left, all available), and each Pod is Running with its
containers ready. On timeout the pods, their warning events and the nodes tell which of the usual
causes it is: an image missing from the VM, a crashing container, or pods left Pending by the
master's taint or a missing pod network.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from labkit.errors import LabkitError
from labkit.app.objects import ref

IMAGE_REASONS = {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName"}
CRASH_REASONS = {"CrashLoopBackOff", "RunContainerError", "CreateContainerError", "CreateContainerConfigError", "Error"}
MASTER_TAINT = "node-role.kubernetes.io/master"
WATCHED = ("Deployment", "Pod")


# --- what "done" means ---------------------------------------------------------------------

def deployment_status(dep: dict) -> tuple[bool, str]:
    want = (dep.get("spec") or {}).get("replicas", 1)
    st = dep.get("status") or {}
    if dep["metadata"].get("generation", 0) > st.get("observedGeneration", 0):
        return False, "waiting for the new spec to be observed"
    updated, total, available = st.get("updatedReplicas", 0), st.get("replicas", 0), st.get("availableReplicas", 0)
    text = f"{available}/{want} available"
    if updated < want:
        return False, f"{text}, {updated}/{want} updated"
    if total > updated:
        return False, f"{text}, {total - updated} old pod(s) terminating"
    return available >= want, text


def container_reason(pod: dict) -> str:
    """What kubectl's STATUS column shows for a container that is not running (first one wins)."""
    st = pod.get("status") or {}
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason:
                return reason
    return ""


def pod_status(pod: dict) -> tuple[bool, str]:
    st = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return False, "Terminating"
    phase = st.get("phase", "Pending")
    statuses = st.get("containerStatuses") or []
    ready = bool(statuses) and all(cs.get("ready") for cs in statuses)
    reason = container_reason(pod)
    if phase == "Running" and ready:
        return True, "Running"
    return False, f"{phase} ({reason})" if reason else (phase if phase != "Running" else "Running, not ready")


# --- waiting -------------------------------------------------------------------------------

class RolloutTimeout(LabkitError):
    def __init__(self, message: str, fix: str, pods: list, events: list):
        super().__init__(message, fix)
        self.pods, self.events = pods, events


def states(cluster, objs: list[dict]) -> dict:
    out = {}
    for obj in objs:
        if obj["kind"] not in WATCHED:
            continue
        live = cluster.get(obj["kind"], obj["metadata"]["name"])
        if live is None:
            out[ref(obj)] = (False, "not found")
        elif obj["kind"] == "Deployment":
            out[ref(obj)] = deployment_status(live)
        else:
            out[ref(obj)] = pod_status(live)
    return out


def wait(cluster, objs: list[dict], images: dict, timeout: float, log: Callable[[str], None],
         interval: float = 2.0, clock=time.monotonic, sleep=time.sleep) -> None:
    """Poll until every Deployment and Pod in objs is done; log each change of state."""
    deadline = clock() + timeout
    shown: dict = {}
    while True:
        now = states(cluster, objs)
        for name, (_done, text) in now.items():
            if shown.get(name) != text:
                log(f"{name}: {text}")
                shown[name] = text
        if all(done for done, _ in now.values()):
            return
        if clock() >= deadline:
            waiting = ", ".join(f"{n} ({t})" for n, (d, t) in now.items() if not d)
            d = diagnose(cluster, objs, images)
            raise RolloutTimeout(f"not ready after {timeout:g}s: {waiting}. {d.problem}", d.fix, d.pods, d.events)
        sleep(interval)


# --- explaining a timeout ------------------------------------------------------------------

@dataclass
class Diagnosis:
    problem: str
    fix: str
    pods: list = field(default_factory=list)    # rows: name, status, ready, restarts, node
    events: list = field(default_factory=list)  # lines: reason, object, message


def lab_pods(cluster, objs: list[dict]) -> list[dict]:
    pods = []
    for obj in objs:
        if obj["kind"] == "Deployment":
            pods += cluster.pods(obj["spec"]["selector"]["matchLabels"])
        elif obj["kind"] == "Pod":
            live = cluster.get("Pod", obj["metadata"]["name"])
            if live is not None:
                pods.append(live)
    return pods


def diagnose(cluster, objs: list[dict], images: dict) -> Diagnosis:
    pods = lab_pods(cluster, objs)
    events = []
    for pod in pods:
        for ev in cluster.events(pod["metadata"]["name"]):
            if ev.get("type") != "Normal":
                involved = ev.get("involvedObject") or {}
                events.append([ev.get("reason", ""), f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
                               (ev.get("message") or "").strip()])
    d = hint(pods, cluster.nodes(), events, images)
    d.pods = [_row(p) for p in pods]
    d.events = events[-12:]
    return d


def _row(pod: dict) -> list:
    st = pod.get("status") or {}
    statuses = st.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or statuses)
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(cs.get("restartCount", 0) for cs in statuses)
    text = pod_status(pod)[1]
    return [pod["metadata"]["name"], text, f"{ready}/{total}", str(restarts), (pod.get("spec") or {}).get("nodeName") or "<none>"]


def hint(pods: list[dict], nodes: list[dict], events: list, images: dict) -> Diagnosis:
    """The most likely cause, from the most specific evidence to the least."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
            if reason in IMAGE_REASONS:
                image = cs.get("image") or ""
                if image == images["inv"]:
                    return Diagnosis(f"the VM has no image {image} ({reason})", "build it in the VM: invoke app.build")
                return Diagnosis(f"the VM has no image {image} ({reason}) and cannot download it offline",
                                 "it comes from the bundle: run invoke bundle.fetch, then invoke vm.provision to load it")
    for pod in pods:
        reason = container_reason(pod)
        if reason in CRASH_REASONS:
            name = pod["metadata"]["name"]
            return Diagnosis(f"pod {name} keeps failing ({reason})",
                             f"read its log: invoke vm.ssh --command 'kubectl logs {name}'")
    pending = [p for p in pods if (p.get("status") or {}).get("phase", "Pending") == "Pending"]
    unscheduled = [p for p in pending if not (p.get("spec") or {}).get("nodeName")]
    not_ready = [n for n in nodes if _ready(n)[0] is False]
    if not_ready and pending:
        node = not_ready[0]
        return Diagnosis(f"node {node['metadata']['name']} is NotReady ({_ready(node)[1]})",
                         "the pod network (Weave Net) is missing or not up yet: invoke cluster.init installs it")
    if unscheduled:
        tainted = [n["metadata"]["name"] for n in nodes
                   if any(t.get("key") == MASTER_TAINT and t.get("effect") == "NoSchedule"
                          for t in (n.get("spec") or {}).get("taints") or [])]
        if tainted and len(tainted) == len(nodes):
            return Diagnosis(f"pods stay Pending: {', '.join(tainted)} still carries the master's NoSchedule taint",
                             "invoke cluster.init removes it (kubectl taint nodes --all node-role.kubernetes.io/master-)")
        said = next((m for r, _o, m in events if r == "FailedScheduling"), "")
        return Diagnosis(f"pods stay Pending{': ' + said if said else ''}",
                         "read the events above; invoke verify checks the cluster")
    if any(r == "FailedCreatePodSandBox" for r, _o, _m in events):
        return Diagnosis("the pods' network sandboxes cannot be created",
                         "the pod network (Weave Net) is not working: invoke cluster.init, then invoke verify")
    return Diagnosis("the pods are not ready yet", "read the pod status and events above; a slow VM may need --timeout 600")


def _ready(node: dict):
    """(True/False/None, message) from the node's Ready condition."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", (cond.get("message") or cond.get("reason") or "").strip()
    return None, ""
