"""cluster.init's steps after kubeadm init, against stand-ins for the node and the API (no VM, no cluster)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from labkit import settings as settings_mod
from labkit.backends import Local, CommandResult
from labkit import kube as api_mod
from labkit.kube.errors import Unreachable
from labkit.errors import LabkitError
from labkit import steps, ui
from labkit.cluster import actions
from labkit.cluster.actions import weave as weave_step
from tests.support import cluster as objs

REPO = Path(__file__).resolve().parents[2]
DOWN = Unreachable("https://192.168.56.10:6443", "[Errno 111] Connection refused")
UNREACHABLE = (DOWN.message, DOWN.fix)
# `kubectl apply` of the Weave 2.8.1 List, as kubectl 1.15 reports it.
APPLIED = "serviceaccount/weave-net created\ndaemonset.apps/weave-net created\n"


def load(tmp_path, env=None):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "settings.yaml", root)
    shutil.copytree(REPO / "provision", root / "provision")
    return settings_mod.load(root, env or {})


class Node(Local):
    """The master as cluster.init sees it: the bundle under tmp (real cat/sha256sum), docker and kubectl stand-ins."""

    name = "ubuntu"

    def __init__(self, bundle: Path, cat_fails=False):
        super().__init__()
        self.bundle, self.cat_fails, self.applied = bundle, cat_fails, []

    def run(self, argv, timeout=30, stdin=None):
        argv = list(argv)
        if "docker" in argv:
            return CommandResult(0, "weaveworks/weave-kube:2.8.1\nweaveworks/weave-npc:2.8.1\n", "", 0.1)
        if "kubectl" in argv:
            self.applied.append((argv, stdin))
            return CommandResult(0, APPLIED, "", 0.5)
        if self.cat_fails and argv[0] == "cat" and argv[1].endswith(".yaml"):
            return CommandResult(1, "", f"cat: {argv[1]}: Permission denied", 0.0)
        return super().run(argv, timeout, stdin)


def bundle_with_weave(tmp_path) -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "manifests").mkdir(parents=True)
    manifest = bundle / "manifests/weave-daemonset-k8s-1.11.yaml"
    manifest.write_text(objs.WEAVE_MANIFEST)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    (bundle / "CHECKSUMS").write_text(f"weave-manifest sha256 {digest} manifests/weave-daemonset-k8s-1.11.yaml\n")
    return bundle


class Step:
    def __init__(self):
        self.lines = []

    def log(self, line):
        self.lines.append(line)


def test_weave_is_applied_from_stdin_with_the_pod_cidr_of_the_settings(tmp_path):
    node = Node(bundle_with_weave(tmp_path))
    s = load(tmp_path, {"LABKIT_NETWORK__POD_CIDR": "10.200.0.0/16", "LABKIT_BUNDLE__GUEST_DIR": str(node.bundle)})
    st = Step()
    weave_step.apply(s, node, s.master, st)
    [(argv, stdin)] = node.applied
    assert argv[-2:] == ["-f", "-"]
    ds = next(o for o in json.loads(stdin)["items"] if o["kind"] == "DaemonSet")
    weave = ds["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "IPALLOC_RANGE", "value": "10.200.0.0/16"} in weave["env"]
    assert "daemonset.apps/weave-net created" in st.lines


def test_an_unreadable_weave_manifest_stops_before_anything_is_applied(tmp_path):
    node = Node(bundle_with_weave(tmp_path), cat_fails=True)
    s = load(tmp_path, {"LABKIT_BUNDLE__GUEST_DIR": str(node.bundle)})
    with pytest.raises(LabkitError) as err:
        weave_step.apply(s, node, s.master, Step())
    assert "cannot read the Weave Net manifest" in err.value.message and "Permission denied" in err.value.message
    assert node.applied == []


class Api:
    """The API as the laptop sees it right after a VM boot: no answer for the first two calls."""

    def __init__(self, settings):
        self.down, self.taints, self.calls = 2, [objs.MASTER_TAINT], []

    def nodes(self):
        self.calls.append("nodes")
        if self.down:
            self.down -= 1
            raise DOWN
        return [objs.node(name="ubuntu", ip="192.168.56.10", taints=self.taints)]

    def set_taints(self, node, taints):
        self.calls.append("set_taints")
        self.taints = taints

    def get(self, kind, namespace, name):
        if kind == "DaemonSet":
            return {"kind": "DaemonSet", "metadata": {"name": "weave-net", "namespace": "kube-system"}}
        return {"kind": "Service", "metadata": {"name": "kube-dns"}, "spec": {"clusterIP": "10.96.0.10"}}

    def pods(self, namespace):
        return objs.ready()[1]

    def events(self, namespace):
        return []


def test_a_rerun_after_a_vm_boot_waits_for_the_api_server_before_the_taint(tmp_path, monkeypatch, capsys):
    s = load(tmp_path)
    made = []
    monkeypatch.setattr(api_mod.time, "sleep", lambda seconds: None)
    after_kubeadm = [step for step in actions.init_plan(s)
                     if not isinstance(step, (actions.KubeadmInit, actions.ExportKubeconfig))]
    steps.run(after_kubeadm, steps.Context(s, 60, open_api=lambda: made.append(Api(s)) or made[-1]))
    out = capsys.readouterr().out
    assert f"{UNREACHABLE[0]}; waiting up to 60s" in out
    assert out.index("Waiting for the API server") < out.index("Removing the master taint")
    assert made[0].calls[:4] == ["nodes", "nodes", "nodes", "nodes"] and "set_taints" in made[0].calls
    assert out.splitlines()[-1].startswith(f"{ui.marks()['ok']} Waiting for node Ready")


def test_waiting_for_the_api_server_is_bounded_and_shows_progress():
    now = [0.0]
    shown = []

    def down():
        raise DOWN

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(LabkitError) as err:
        api_mod.wait_reachable(down, 100, shown.append, interval=5, clock=lambda: now[0], sleep=sleep)
    assert err.value.message == f"the API server did not answer within 100s: {UNREACHABLE[0]}"
    assert err.value.fix == UNREACHABLE[1]
    assert shown == [f"{UNREACHABLE[0]}; waiting up to 100s", "still no answer after 30s",
                     "still no answer after 60s", "still no answer after 90s"]
    assert 100 <= now[0] < 110
    assert api_mod.wait_reachable(lambda: [], 100, shown.append) is True  # answers at once: no wait
