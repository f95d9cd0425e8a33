"""Waiting for the rollout, and the hint on timeout, on API objects in the 1.15 API server's format.

Names, addresses, reasons and messages are the ones lab 7's transcript shows (can-inventory-756c87dc9f-*,
10.32.0.x on node ubuntu, the master taint, the NotReady node before Weave) or the kubelet's own
(ErrImageNeverPull: 'Container image "X" is not present with pull policy of Never').
"""
from __future__ import annotations

import copy

import pytest

from labkit.app import rollout
from labkit.errors import LabkitError

IMAGES = {"inv": "trash-can/inv:0.1", "inv_base": "python:3.7.9-alpine3.12", "web": "nginx:1.17.1",
          "client": "busybox:1.31.0"}
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "can-inventory", "labels": {"app": "inv"}},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "inv"}},
                   "template": {"metadata": {"labels": {"app": "inv"}},
                                "spec": {"containers": [{"name": "inv", "image": IMAGES["inv"]}]}}}}
WEB = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
       "spec": {"containers": [{"name": "web", "image": IMAGES["web"]}]}}
CLIENT = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
          "spec": {"containers": [{"name": "client", "image": IMAGES["client"]}]}}
OBJS = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "inv"}}, DEPLOY, CLIENT, WEB]


def deployment(generation=1, observed=1, replicas=None, updated=None, available=None):
    status = {"observedGeneration": observed}
    for key, value in (("replicas", replicas), ("updatedReplicas", updated), ("readyReplicas", available),
                       ("availableReplicas", available)):
        if value:
            status[key] = value
    if available and available < 2:
        status["unavailableReplicas"] = 2 - available
    status["conditions"] = [
        {"type": "Progressing", "status": "True", "lastUpdateTime": "2019-07-12T09:44:09Z",
         "lastTransitionTime": "2019-07-12T09:44:01Z", "reason": "NewReplicaSetAvailable" if available == 2
         else "ReplicaSetUpdated", "message": 'ReplicaSet "can-inventory-756c87dc9f" is progressing.'}]
    obj = copy.deepcopy(DEPLOY)
    obj["metadata"].update({"namespace": "default", "generation": generation, "resourceVersion": "172650",
                            "uid": "2b1b1dd3-a4ab-11e9-8f3b-0242ac110002"})
    obj["status"] = status
    return obj


def pod(name, image, phase="Running", ready=True, waiting=None, message="", node="ubuntu", ip="10.32.0.6",
        restarts=0, labels=None, scheduled=True):
    container = {"name": name.split("-")[0] if labels is None else "inv", "image": image,
                 "imageID": "" if waiting else "docker://sha256:5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced",
                 "ready": ready, "restartCount": restarts}
    if waiting:
        container["state"] = {"waiting": {"reason": waiting, **({"message": message} if message else {})}}
    else:
        container["state"] = {"running": {"startedAt": "2019-07-12T09:44:05Z"}}
    status = {"phase": phase, "qosClass": "BestEffort", "hostIP": "192.168.56.10"}
    if scheduled:
        status.update(podIP=ip, containerStatuses=[container])
        status["conditions"] = [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                 "lastTransitionTime": "2019-07-12T09:44:01Z"}]
    else:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                                 "lastTransitionTime": "2019-07-12T09:44:01Z", "reason": "Unschedulable",
                                 "message": "0/1 nodes are available: 1 node(s) had taints that the pod didn't tolerate."}]
    spec = {"containers": [{"name": container["name"], "image": image}]}
    if scheduled:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                            "labels": labels or {"run": name}},
            "spec": spec, "status": status}


def node(ready=True, taints=()):
    cond = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status. AppArmor enabled"}
    if not ready:
        cond = {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                "message": "runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                           "message:docker: network plugin is not ready: cni config uninitialized"}
    spec = {"podCIDR": "10.244.0.0/24"}
    if taints:
        spec["taints"] = [{"key": k, "effect": "NoSchedule"} for k in taints]
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ubuntu", "labels": {"node-role.kubernetes.io/master": ""}},
            "spec": spec, "status": {"conditions": [cond]}}


def event(pod_name, reason, message, type_="Warning"):
    return {"apiVersion": "v1", "kind": "Event", "type": type_, "reason": reason, "message": message,
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": pod_name, "apiVersion": "v1"},
            "source": {"component": "kubelet", "host": "ubuntu"}, "count": 3,
            "firstTimestamp": "2019-07-12T09:44:02Z", "lastTimestamp": "2019-07-12T09:44:30Z"}


INV_PODS = ["can-inventory-756c87dc9f-b45ns", "can-inventory-756c87dc9f-lmxcp"]


def inv_pod(i, **kw):
    return pod(INV_PODS[i], IMAGES["inv"], ip=f"10.32.0.{7 - i}", labels={"app": "inv", "pod-template-hash": "756c87dc9f"}, **kw)


class Cluster:
    """What the API server answers, step by step: each call to advance() moves to the next snapshot."""

    def __init__(self, snapshots, nodes=None, events=None):
        self.snapshots, self.step = snapshots, 0
        self._nodes = nodes or [node()]
        self._events = events or {}

    @property
    def now(self):
        return self.snapshots[min(self.step, len(self.snapshots) - 1)]

    def get(self, kind, name):
        return self.now.get((kind, name))

    def pods(self, selector):
        return [o for (k, _), o in sorted(self.now.items()) if k == "Pod"
                and all(o["metadata"]["labels"].get(a) == b for a, b in selector.items())]

    def events(self, name):
        return self._events.get(name, [])

    def nodes(self):
        return self._nodes


def snapshot(dep=None, pods=()):
    snap = {("Deployment", "can-inventory"): dep} if dep else {}
    for p in pods:
        snap[("Pod", p["metadata"]["name"])] = p
    return snap


class Clock:
    def __init__(self, cluster=None):
        self.t, self.cluster = 0.0, cluster

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds
        if self.cluster:
            self.cluster.step += 1


def test_deployment_status_follows_kubectl_rollout_status():
    assert rollout.deployment_status(deployment(generation=2, observed=1, replicas=2, updated=2, available=2)) == (
        False, "waiting for the new spec to be observed")
    assert rollout.deployment_status(deployment(replicas=2, updated=1, available=0)) == (False, "0/2 available, 1/2 updated")
    assert rollout.deployment_status(deployment(replicas=3, updated=2, available=2)) == (
        False, "2/2 available, 1 old pod(s) terminating")
    assert rollout.deployment_status(deployment(replicas=2, updated=2, available=1)) == (False, "1/2 available")
    assert rollout.deployment_status(deployment(replicas=2, updated=2, available=2)) == (True, "2/2 available")


def test_pod_status_reads_like_kubectls_status_column():
    assert rollout.pod_status(pod("web", IMAGES["web"])) == (True, "Running")
    assert rollout.pod_status(pod("web", IMAGES["web"], phase="Pending", ready=False, waiting="ContainerCreating")) == (
        False, "Pending (ContainerCreating)")
    assert rollout.pod_status(pod("web", IMAGES["web"], ready=False)) == (False, "Running, not ready")
    assert rollout.pod_status(pod("web", IMAGES["web"], phase="Pending", scheduled=False)) == (False, "Pending")
    terminating = pod("web", IMAGES["web"])
    terminating["metadata"]["deletionTimestamp"] = "2019-07-12T10:02:11Z"
    assert rollout.pod_status(terminating) == (False, "Terminating")


def test_wait_logs_each_change_once_and_returns_when_all_are_up():
    creating = dict(phase="Pending", ready=False, waiting="ContainerCreating")
    cluster = Cluster([
        snapshot(deployment(replicas=2, updated=2), [inv_pod(0, **creating), inv_pod(1, **creating),
                                                     pod("web", IMAGES["web"], **creating), pod("client", IMAGES["client"], **creating)]),
        snapshot(deployment(replicas=2, updated=2, available=1), [inv_pod(0), inv_pod(1, **creating),
                                                                   pod("web", IMAGES["web"]), pod("client", IMAGES["client"], **creating)]),
        snapshot(deployment(replicas=2, updated=2, available=1), [inv_pod(0), inv_pod(1, **creating),
                                                                   pod("web", IMAGES["web"]), pod("client", IMAGES["client"], **creating)]),
        snapshot(deployment(replicas=2, updated=2, available=2), [inv_pod(0), inv_pod(1),
                                                                   pod("web", IMAGES["web"]), pod("client", IMAGES["client"])]),
    ])
    clock = Clock(cluster)
    lines = []
    rollout.wait(cluster, OBJS, IMAGES, timeout=60, log=lines.append, interval=2, clock=clock, sleep=clock.sleep)
    assert lines == [
        "deployment.apps/can-inventory: 0/2 available", "pod/client: Pending (ContainerCreating)",
        "pod/web: Pending (ContainerCreating)",
        "deployment.apps/can-inventory: 1/2 available", "pod/web: Running",
        "deployment.apps/can-inventory: 2/2 available", "pod/client: Running"]
    assert clock.t == 6  # three polls after the first, two seconds apart


def timeout_with(pods, nodes=None, events=None, dep=None):
    cluster = Cluster([snapshot(dep or deployment(replicas=2, updated=2), pods)], nodes=nodes, events=events)
    clock = Clock()
    with pytest.raises(rollout.RolloutTimeout) as err:
        rollout.wait(cluster, OBJS, IMAGES, timeout=10, log=lambda _l: None, interval=2, clock=clock, sleep=clock.sleep)
    assert clock.t == 10  # gave up at the deadline, not before
    return err.value


def test_missing_inventory_image_points_at_app_build():
    never = dict(phase="Pending", ready=False, waiting="ErrImageNeverPull",
                 message='Container image "trash-can/inv:0.1" is not present with pull policy of Never')
    err = timeout_with([inv_pod(0, **never), inv_pod(1, **never), pod("web", IMAGES["web"]), pod("client", IMAGES["client"])],
                       events={INV_PODS[0]: [event(INV_PODS[0], "ErrImageNeverPull",
                                                   'Container image "trash-can/inv:0.1" is not present with pull policy of Never'),
                                             event(INV_PODS[0], "Pulled", "Container image ... already present", "Normal")]})
    assert isinstance(err, LabkitError)
    assert err.line() == ("labkit: not ready after 10s: deployment.apps/can-inventory (0/2 available). "
                          "the VM has no image trash-can/inv:0.1 (ErrImageNeverPull). Fix: build it in the VM: invoke app.build")
    assert err.pods[0] == [INV_PODS[0], "Pending (ErrImageNeverPull)", "0/1", "0", "ubuntu"]
    assert err.events == [["ErrImageNeverPull", f"pod/{INV_PODS[0]}",
                           'Container image "trash-can/inv:0.1" is not present with pull policy of Never']]


def test_missing_nginx_image_points_at_the_bundle():
    backoff = dict(phase="Pending", ready=False, waiting="ImagePullBackOff", message='Back-off pulling image "nginx:1.17.1"')
    err = timeout_with([inv_pod(0), inv_pod(1), pod("web", IMAGES["web"], **backoff), pod("client", IMAGES["client"])],
                       dep=deployment(replicas=2, updated=2, available=2))
    assert "pod/web (Pending (ImagePullBackOff))" in err.message
    assert "the VM has no image nginx:1.17.1 (ImagePullBackOff) and cannot download it offline" in err.message
    assert err.fix == "it comes from the bundle: run invoke bundle.fetch, then invoke vm.provision to load it"


def test_pending_on_a_tainted_master_points_at_the_taint():
    pending = dict(phase="Pending", ready=False, scheduled=False)
    err = timeout_with([inv_pod(0, **pending), inv_pod(1, **pending), pod("web", IMAGES["web"], **pending),
                        pod("client", IMAGES["client"], **pending)],
                       nodes=[node(taints=["node-role.kubernetes.io/master"])],
                       events={"web": [event("web", "FailedScheduling",
                                             "0/1 nodes are available: 1 node(s) had taints that the pod didn't tolerate.")]})
    assert "ubuntu still carries the master's NoSchedule taint" in err.message
    assert err.fix == "invoke cluster.init removes it (kubectl taint nodes --all node-role.kubernetes.io/master-)"
    assert err.pods[3] == ["web", "Pending", "0/1", "0", "<none>"]  # inv pods, client, web: the apply order


def test_pending_on_a_not_ready_node_points_at_the_pod_network():
    # The lab's state before Weave: node NotReady, tainted not-ready, pods Pending.
    pending = dict(phase="Pending", ready=False, scheduled=False)
    err = timeout_with([inv_pod(0, **pending), inv_pod(1, **pending), pod("web", IMAGES["web"], **pending),
                        pod("client", IMAGES["client"], **pending)],
                       nodes=[node(ready=False, taints=["node.kubernetes.io/not-ready"])])
    assert "node ubuntu is NotReady (runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady" in err.message
    assert err.fix == "the pod network (Weave Net) is missing or not up yet: invoke cluster.init installs it"


def test_a_crashing_container_points_at_its_log():
    crash = dict(ready=False, waiting="CrashLoopBackOff", restarts=4,
                 message="Back-off 1m20s restarting failed container=inv pod=can-inventory-756c87dc9f-b45ns_default(...)")
    err = timeout_with([inv_pod(0, **crash), inv_pod(1), pod("web", IMAGES["web"]), pod("client", IMAGES["client"])],
                       dep=deployment(replicas=2, updated=2, available=1))
    assert f"pod {INV_PODS[0]} keeps failing (CrashLoopBackOff)" in err.message
    assert err.fix == f"read its log: invoke vm.ssh --command 'kubectl logs {INV_PODS[0]}'"
    assert err.pods[0][3] == "4"


def test_a_missing_object_is_waited_for_not_a_crash():
    cluster = Cluster([snapshot(None, [pod("web", IMAGES["web"]), pod("client", IMAGES["client"])])])
    clock = Clock()
    lines = []
    with pytest.raises(rollout.RolloutTimeout) as err:
        rollout.wait(cluster, OBJS, IMAGES, timeout=4, log=lines.append, interval=2, clock=clock, sleep=clock.sleep)
    assert "deployment.apps/can-inventory: not found" in lines
    assert "deployment.apps/can-inventory (not found)" in err.value.message
