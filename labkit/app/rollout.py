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

from labkit.app.objects import ref
from labkit.errors import LabkitError
from labkit.kube.objects import (MASTER_TAINT, condition, container_reason, crashing, master_tainted, missing_images,
                                 name, node_ready, phase, pod_ready, ready_count, ready_message, terminating)

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


def pod_status(pod: dict) -> tuple[bool, str]:
    if terminating(pod):
        return False, "Terminating"
    if pod_ready(pod):
        return True, "Running"
    now, reason = phase(pod), container_reason(pod)
    return False, f"{now} ({reason})" if reason else (now if now != "Running" else "Running, not ready")


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
    ready, total = ready_count(pod)
    restarts = sum(cs.get("restartCount", 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])
    return [name(pod), pod_status(pod)[1], f"{ready}/{total}", str(restarts),
            (pod.get("spec") or {}).get("nodeName") or "<none>"]


def hint(pods: list[dict], nodes: list[dict], events: list, images: dict) -> Diagnosis:
    """The most likely cause, from the most specific evidence to the least."""
    for pod in pods:
        for image, reason in missing_images(pod):
            if image == images["inv"]:
                return Diagnosis(f"the VM has no image {image} ({reason})", "build it in the VM: invoke app.build")
            return Diagnosis(f"the VM has no image {image} ({reason}) and cannot download it offline",
                             "it comes from the bundle: run invoke bundle.fetch, then invoke vm.provision to load it")
    for pod in pods:
        if crashing(pod):
            return Diagnosis(f"pod {name(pod)} keeps failing ({container_reason(pod)})",
                             f"read its log: invoke vm.ssh --command 'kubectl logs {name(pod)}'")
    pending = [p for p in pods if phase(p) == "Pending"]
    unscheduled = [p for p in pending if not (p.get("spec") or {}).get("nodeName")]
    not_ready = [n for n in nodes if condition(n, "Ready") and not node_ready(n)]
    if not_ready and pending:
        node = not_ready[0]
        return Diagnosis(f"node {name(node)} is NotReady ({ready_message(node)})",
                         "the pod network (Weave Net) is missing or not up yet: invoke cluster.init installs it")
    if unscheduled:
        tainted = [name(n) for n in nodes if master_tainted(n)]
        if tainted and len(tainted) == len(nodes):
            return Diagnosis(f"pods stay Pending: {', '.join(tainted)} still carries the master's NoSchedule taint",
                             f"invoke cluster.init removes it (kubectl taint nodes --all {MASTER_TAINT}-)")
        said = next((m for r, _o, m in events if r == "FailedScheduling"), "")
        return Diagnosis(f"pods stay Pending{': ' + said if said else ''}",
                         "read the events above; invoke verify checks the cluster")
    if any(r == "FailedCreatePodSandBox" for r, _o, _m in events):
        return Diagnosis("the pods' network sandboxes cannot be created",
                         "the pod network (Weave Net) is not working: invoke cluster.init, then invoke verify")
    return Diagnosis("the pods are not ready yet", "read the pod status and events above; a slow VM may need --timeout 600")

