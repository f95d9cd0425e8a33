"""cluster.init, cluster.join and cluster.reset as plans: --dry-run prints exactly the steps a real run executes.

Each plan is described, then run against stand-ins for the nodes (answers in the shapes of the real
commands: the facts script, kubectl, admin.conf) and for the API (the transcript's objects), and the two
lists of titles are compared. A re-run on a ready cluster is the case here: every step runs and skips.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit import settings as settings_mod
from labkit import steps
from labkit.backends import CommandResult
from labkit.cluster import actions, join as joinmod, node as nodeops
from tests import dryrun
from tests.t0 import cluster_objects as objs
from tests.t0.test_cluster_join import CA_PEM
from tests.t0.test_cluster_kubeconfig import ADMIN_CONF

REPO = Path(__file__).resolve().parents[2]
INITIALIZED = ("kubeadm=v1.15.12\ndocker=18.09.7\nadmin_conf=yes\nkubelet_conf=yes\nmanifests=4\n"
               "etcd_data=yes\ncni_conf=1\n")
JOINED = "kubeadm=v1.15.12\ndocker=18.09.7\nadmin_conf=\nkubelet_conf=yes\nmanifests=0\netcd_data=\ncni_conf=1\n"
CLEAN = "kubeadm=v1.15.12\ndocker=18.09.7\nadmin_conf=\nkubelet_conf=\nmanifests=0\netcd_data=\ncni_conf=0\n"


def load(tmp_path, env):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "settings.yaml", root)
    shutil.copytree(REPO / "provision", root / "provision")
    return settings_mod.load(root, env)


class Node:
    """A node of a cluster that is up: answers the commands the steps send, records them."""

    def __init__(self, name, facts):
        self.name, self.facts, self.sent = name, facts, []

    def run(self, argv, timeout=30, stdin=None):
        self.sent.append(list(argv))
        text = " ".join(argv)
        if text == " ".join(nodeops.sudo_sh(nodeops.FACTS_SCRIPT)):
            return CommandResult(0, self.facts, "", 0.1)
        if nodeops.USER_KUBECONFIG_SCRIPT in text:
            return CommandResult(0, "unchanged\n", "", 0.1)
        if argv[-1] == nodeops.ADMIN_CONF:
            return CommandResult(0, ADMIN_CONF, "", 0.1)
        if argv == ["sudo", "-n", "cat", joinmod.CA_CERT]:  # one cluster: every node has the master's CA
            return CommandResult(0, CA_PEM, "", 0.1)
        if argv == joinmod.registered_argv(argv[-4]):
            return CommandResult(0, f"node/{argv[-4]}\n", "", 0.1)
        raise AssertionError(f"unexpected command on {self.name}: {text}")


class Api:
    def __init__(self, s):
        # a ready cluster: the master taint gone on one node, kept with workers
        taint = [objs.MASTER_TAINT] if s.workers else None
        self.nodes_ = [objs.node(name=n.name, ip=n.ip, master=n.role == "master",
                                 taints=taint if n.role == "master" else None) for n in s.nodes]
        self.pods_ = objs.ready()[1] + [objs.weave(f"w{i}", node_name=n.name) for i, n in enumerate(s.workers)]

    def nodes(self):
        return self.nodes_

    def pods(self, namespace, selector=None):
        return self.pods_

    def events(self, namespace, involving=None):
        return []

    def get(self, kind, namespace, name):
        if kind == "Service":
            return {"kind": "Service", "spec": {"clusterIP": "10.96.0.10"}}
        return {"kind": kind, "metadata": {"name": name}}


def identity(i: int) -> str:
    """Each VM's own machine-id (32 hex digits, machine-id(5)) and product_uuid (a DMI UUID)."""
    return f"machine_id={i:x}c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f\nproduct_uuid=4a5b6c7d-1e2f-3a4b-5c6d-7e8f9a0b1c{i:02d}\n"


def plan_and_run(tmp_path, capsys, env, plan_of, facts=None):
    s = load(tmp_path, env)
    nodes = {n.name: Node(n.name, (facts or (INITIALIZED if n.role == "master" else JOINED)) + identity(i))
             for i, n in enumerate(s.nodes)}
    ctx = steps.Context(s, 60, reach=nodes.__getitem__, open_api=lambda: Api(s), vm_state=lambda name: "running")
    steps.dry_run(plan_of(s), ctx)
    dry = capsys.readouterr().out
    steps.run(plan_of(s), ctx)
    return dry, capsys.readouterr().out, nodes


@pytest.mark.parametrize("env", [{}, {"LABKIT_WORKERS": "2"}], ids=["one node", "two workers"])
def test_init_dry_run_lists_exactly_the_steps_the_run_executes(tmp_path, capsys, env):
    dry, run, _nodes = plan_and_run(tmp_path, capsys, env, actions.init_plan)
    assert dryrun.planned(dry) == dryrun.ran(run)
    assert len(dryrun.planned(dry)) == 7 + int(env.get("LABKIT_WORKERS", 0))
    assert ("Joining worker-2 (192.168.56.12) to the cluster" in dryrun.planned(dry)) == bool(env)


def test_join_and_reset_dry_runs_list_exactly_the_steps_the_runs_execute(tmp_path, capsys):
    dry, run, nodes = plan_and_run(tmp_path, capsys, {"LABKIT_WORKERS": "1"},
                                   lambda s: actions.join_plan(s, s.workers))
    assert dryrun.planned(dry) == dryrun.ran(run) == ["Waiting for the API server", "Checking the nodes against the settings",
                                                      "Joining worker-1 (192.168.56.11) to the cluster"]
    assert [argv for argv in nodes["worker-1"].sent if "join" in " ".join(argv)] == []  # joined: skipped
    (tmp_path / "again").mkdir()
    dry, run, nodes = plan_and_run(tmp_path / "again", capsys, {"LABKIT_WORKERS": "1"}, actions.reset_plan, CLEAN)
    assert dryrun.planned(dry) == dryrun.ran(run) == ["Resetting Kubernetes on worker-1", "Resetting Kubernetes on ubuntu",
                                                      "Forgetting the laptop's kubeconfig"]
