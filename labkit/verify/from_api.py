"""What the Kubernetes API says: one snapshot of the objects the lab looks at, and how to read it.

The snapshot holds plain dicts in the API's own JSON shape (what `kubectl get -o json` prints and
what the official client returns with `_preload_content=False`), so the checks deciding on it
(labkit/verify/checks/) are pure functions that tests feed with the lab transcript's values.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from labkit import kube
from labkit.kube import errors as kube_errors
from labkit.kube.objects import (CRASH_REASONS, WEAVE, container_state, containers, labels_match, missing_images, phase,
                                 pod_state, terminating, waiting_reason)
from labkit.kube.objects import name as name_of
from labkit.text import reason
from labkit.verify import hints
from labkit.verify.model import Lab

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
    return "api-unreachable", {"error": reason(getattr(exc, "message", None) or exc)}


# --- reading objects (the shared readers are in labkit.kube.objects) --------------------------

def pods_with(snap: Snapshot, namespace: str, labels: dict) -> list:
    return [p for p in snap.pods.get(namespace, []) if labels_match(p, labels) and not terminating(p)]


def pod_named(snap: Snapshot, namespace: str, name: str) -> Optional[dict]:
    return next((p for p in snap.pods.get(namespace, []) if name_of(p) == name), None)


def weave_pods(snap: Snapshot) -> list:
    return pods_with(snap, "kube-system", WEAVE)


def node_of(lab: Lab, snap: Snapshot) -> Optional[dict]:
    """The API's Node object of lab.node (None: not registered)."""
    return next((n for n in snap.nodes if name_of(n) == lab.node), None)


def inv_pods(lab: Lab, snap: Snapshot) -> list:
    selector = ((snap.deployment or {}).get("spec", {}).get("selector", {}).get("matchLabels")) or lab.app_labels
    return pods_with(snap, lab.namespace, selector)


def pod_problem(lab: Lab, pod: dict, node: str) -> hints.Hint:
    """Why a pod is not Running and Ready, as an instructor would read `kubectl describe pod`."""
    name = name_of(pod)
    for image, reason in missing_images(pod):
        if image == lab.inv_image:
            fix = "invoke app.build, then invoke app.deploy"
        else:
            fix = "invoke vm.provision (loads the bundle's images), then invoke app.deploy"
        return hints.make("image-missing", pod=name, image=image, reason=reason, image_fix=fix)
    for s in containers(pod):
        terminated = (s.get("state") or {}).get("terminated")
        if waiting_reason(s) in CRASH_REASONS or terminated or (
                not s.get("ready") and (s.get("lastState") or {}).get("terminated")):
            return hints.make("crashloop", pod=name, container=s.get("name"), state=container_state(s), node=node)
    if phase(pod) == "Pending":
        return hints.make("pod-pending", pod=name, reason=pod_state(pod), node=node)
    return hints.make("pod-not-ready", pod=name, phase=phase(pod), state=pod_state(pod), node=node)
