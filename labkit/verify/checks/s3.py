"""Sections 3-4 of the lab: the API server answers, the node is reachable and Ready, the control plane
runs, and the master taint is as the lab's layout wants it."""
from __future__ import annotations

from dataclasses import replace

from labkit.backends import CommandResult
from labkit.checks import FAIL
from labkit.kube.objects import KUBE_PROXY, MASTER_TAINT, condition, master_tainted, name as name_of
from labkit.kube.objects import pod_ready as is_ready
from labkit.kube.objects import pod_state
from labkit.text import short
from labkit.verify import hints
from labkit.verify.checks import Inputs
from labkit.verify.checks.s5 import weave_running
from labkit.verify.from_api import Snapshot, node_of, pods_with
from labkit.verify.model import Lab, LabCheck, Result, failed, passed

SECTION = 3
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def checks(x: Inputs) -> list[LabCheck]:
    lab, node = x.lab, x.lab.node
    taint_title, taint = (("master taint removed", master_untainted) if lab.master_runs_pods
                          else ("master taint kept (workers run the pods)", master_kept))
    return [
        x.api("api", SECTION, "API server reachable", api_reachable, needs=()),
        LabCheck("node.ssh", f"SSH to node {node}", lambda t: decide_reachable(x.where.node.run(["true"], timeout=t), node),
                 timeout=20, section=SECTION, source="laptop", target=f"{node} (ssh)"),
        x.api("node.ready", SECTION, f"node {node} Ready", node_ready),
        x.api("node.taint", SECTION, taint_title, taint),
        *(x.api(f"cp.{comp}", SECTION, f"{comp} running", component_running(comp))
          for comp in CONTROL_PLANE + ("kube-proxy",)),
    ]


def api_reachable(lab: Lab, snap: Snapshot) -> Result:
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


def decide_reachable(res: CommandResult, node: str) -> Result:
    """`true` on the node: can the laptop run commands there at all?"""
    if res.ok:
        return passed("ssh ok")
    return failed(short(res.stderr or f"exit code {res.exit_code}"),
                  hints.make("node-unreachable", node=node, error=short(res.stderr or str(res.exit_code), 120)))


def node_ready(lab: Lab, snap: Snapshot) -> Result:
    node = node_of(lab, snap)
    if node is None:
        known = ", ".join(name_of(n) for n in snap.nodes) or "none"
        return failed(f"no node {lab.node} (registered: {known})", hints.make("node-missing", node=lab.node))
    ready = condition(node, "Ready")
    status, message = ready.get("status"), ready.get("message") or ready.get("reason") or ""
    kubelet = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
    if status == "True":
        return passed(f"Ready, kubelet {kubelet}".rstrip(", "))
    detail = f"NotReady: {message[:120]}"
    if status == "False" and ("NetworkPluginNotReady" in message or "cni" in message.lower()):
        # weave's own verdict names the cause (not installed, or installed and not ready);
        # weave waits for this check, so it is said here, once
        weave = weave_running(lab, snap)
        return replace(weave, detail=detail) if weave.status == FAIL else failed(detail, hints.make("cni-missing"))
    if status == "False":
        return failed(detail, hints.make("kubelet-not-ready", node=lab.node, reason=message[:200]))
    return failed(f"Ready is {status or 'missing'}", hints.make("kubelet-down", node=lab.node))


def master_untainted(lab: Lab, snap: Snapshot) -> Result:
    """A single node (or master_runs_pods): the lab removes the master taint so pods can run there."""
    node = node_of(lab, snap)
    if node is None:
        return failed(f"no node {lab.node}", hints.make("node-missing", node=lab.node))
    taints = node.get("spec", {}).get("taints") or []
    shown = ", ".join(f"{t.get('key')}:{t.get('effect')}" for t in taints)
    if master_tainted(node):
        return failed(f"taints: {shown}", hints.make("master-taint", node=lab.node))
    return passed(f"other taints: {shown}" if taints else "no taints")


def master_kept(lab: Lab, snap: Snapshot) -> Result:
    """With workers (and master_runs_pods off) the taint stays: the lab's pods go to the workers."""
    node = node_of(lab, snap)
    if node is None:
        return failed(f"no node {lab.node}", hints.make("node-missing", node=lab.node))
    if master_tainted(node):
        return passed(f"{MASTER_TAINT}:NoSchedule")
    return failed("no master taint", hints.make("master-untainted", node=lab.node))


def component_running(component: str):
    labels = KUBE_PROXY if component == "kube-proxy" else {"component": component}

    def check(lab: Lab, snap: Snapshot) -> Result:
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
