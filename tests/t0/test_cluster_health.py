"""Readiness, waiting, hints and the status tables, on the states the lab transcript goes through."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import cluster as objs
from labkit import settings as settings_mod
from labkit.cluster import health, status

REPO = Path(__file__).resolve().parents[2]


def test_after_kubeadm_init_the_cluster_is_not_ready_and_says_why():
    h = health.Health(*objs.after_init())
    assert not h.ok
    assert h.not_ready_nodes == [objs.NODE]
    assert h.line() == "nodes 0/1 Ready, CoreDNS 0/2 Running (Pending), weave-net 0/1 ready"


def test_weave_half_ready_is_not_ready():
    h = health.Health(*objs.weave_starting())
    assert not h.ok
    assert "weave-net 0/1 ready (Running)" in h.line()


def test_the_end_state_of_the_lab_is_ready():
    h = health.Health(*objs.ready())
    assert h.ok
    assert h.line() == "nodes 1/1 Ready, CoreDNS 2/2 Running, weave-net 1/1 ready"


def test_weave_must_run_on_every_node():
    nodes, pods = objs.ready()
    nodes.append(objs.node("worker1", ip="192.168.56.11", master=False))
    h = health.Health(nodes, pods)
    assert not h.ok and "weave-net 1/2 ready" in h.line()
    h = health.Health(nodes, pods + [objs.weave("abcde", node_name="worker1")])
    assert h.ok


def test_no_nodes_and_no_coredns_is_never_ready():
    assert not health.Health([], []).ok
    nodes, pods = objs.ready()
    assert not health.Health(nodes, [p for p in pods if "coredns" not in p["metadata"]["name"]]).ok


@pytest.mark.parametrize("make, words", [
    (lambda: objs.ready()[1][:-1] + [objs.weave(ready=(False, True), waiting="ImagePullBackOff")],
     "lacks the image(s) docker.io/weaveworks/weave-kube:2.8.1"),
    (lambda: [objs.coredns("jklpz", ready=False, waiting="CrashLoopBackOff", restarts=5), objs.weave()],
     "CoreDNS keeps crashing"),
    (lambda: objs.after_init()[1], "Weave Net is not running"),
])
def test_hints_name_the_likely_cause(make, words):
    nodes = [objs.node(ready=False)]
    assert words in health.hint(health.Health(nodes, make()))


def test_image_pull_hint_points_at_the_bundle():
    pods = [objs.coredns("jklpz", ready=False, waiting="ErrImagePull"), objs.weave()]
    text = health.hint(health.Health([objs.node()], pods))
    assert "k8s.gcr.io/coredns:1.3.1" in text and "invoke bundle.fetch" in text and "vm.provision --step docker" in text


def test_not_ready_kubelet_with_everything_else_running():
    nodes, pods = objs.ready()
    h = health.Health([objs.node(ready=False)], pods)
    assert "journalctl -u kubelet" in health.hint(h)


def test_warning_events_oldest_first_with_counts():
    lines = health.warning_events(objs.FAILED_SCHEDULING)
    assert lines == [
        "FailedScheduling pod/coredns-5c98db65d4-vkqkj: 0/1 nodes are available: 1 node(s) had taints that the pod didn't tolerate.",
        "FailedScheduling pod/coredns-5c98db65d4-jklpz: 0/1 nodes are available: 1 node(s) had taints that the pod didn't tolerate. (x3)",
    ]


class FakeClock:
    """Time for the wait loop: sleeping advances it instantly."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_reports_each_change_once_and_returns_when_ready():
    clock = FakeClock()
    states = iter(["cannot reach the API server at https://192.168.56.10:6443 (MaxRetryError)"] * 3
                  + [health.Health(*objs.after_init())] * 4
                  + [health.Health(*objs.weave_starting())] * 2
                  + [health.Health(*objs.ready())])
    shown = []
    ok, last = health.wait(lambda: next(states), timeout=600, show=shown.append, interval=3, clock=clock, sleep=clock.sleep)
    assert ok and last.ok
    assert shown == ["cannot reach the API server at https://192.168.56.10:6443 (MaxRetryError)",
                     "nodes 0/1 Ready, CoreDNS 0/2 Running (Pending), weave-net 0/1 ready",
                     "nodes 0/1 Ready, CoreDNS 0/2 Running (Pending), weave-net 0/1 ready (Running)",
                     "nodes 1/1 Ready, CoreDNS 2/2 Running, weave-net 1/1 ready"]
    assert clock.now == 9 * 3


def test_wait_gives_up_at_the_timeout_with_the_last_state():
    clock = FakeClock()
    calls = []

    def probe():
        calls.append(clock.now)
        return health.Health(*objs.after_init())

    ok, last = health.wait(probe, timeout=30, show=lambda _: None, interval=3, clock=clock, sleep=clock.sleep)
    assert not ok and not last.ok
    assert calls[-1] >= 30 and len(calls) == 11


def test_status_rows_match_kubectls_columns():
    nodes, pods = objs.after_init()
    assert status.node_rows(nodes) == [[objs.NODE, "NotReady", "master",
                                        "node-role.kubernetes.io/master:NoSchedule,node.kubernetes.io/not-ready:NoSchedule",
                                        "v1.15.0", "10.0.0.195"]]
    rows = {r[0]: r for r in status.pod_rows(pods)}
    assert rows["coredns-5c98db65d4-jklpz"] == ["coredns-5c98db65d4-jklpz", "0/1", "Pending", "0", ""]
    assert rows["kube-proxy-z2wln"] == ["kube-proxy-z2wln", "1/1", "Running", "0", objs.NODE]
    nodes, pods = objs.ready()
    assert status.node_rows(nodes)[0][1:4] == ["Ready", "master", "<none>"]
    crash = objs.coredns("x", ready=False, waiting="CrashLoopBackOff", restarts=7)
    assert status.pod_rows([crash])[0][2:4] == ["CrashLoopBackOff", "7"]


def test_address_problems_catch_the_nat_address():
    s = settings_mod.load(REPO, {"LABKIT_NODES__0__NAME": objs.NODE})
    assert status.address_problems([objs.node(ip=s.master.ip)], s) == []
    problems = status.address_problems([objs.node(ip="10.0.2.15")], s)
    assert problems == [f"{objs.NODE} reports InternalIP 10.0.2.15, not its host-only address {s.master.ip}"]
