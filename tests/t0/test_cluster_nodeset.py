"""T0: the nodes a lab was built with against this shell's settings (a forgotten LABKIT_WORKERS), the master
taint converging both ways, and nodes sharing a machine-id or product_uuid."""
from __future__ import annotations

import os
import shutil

import pytest
from invoke import Config, Context, Exit

from labkit import settings as settings_mod, steps
from labkit.cluster import nodeset, node as nodeops
from labkit.cluster.actions import init_plan
from labkit.cluster.actions.nodes import CheckNodes
from labkit.cluster.actions.taint import MasterTaint
from labkit.errors import LabkitError
from labkit.tasks import vm
from labkit.vm.actions import preflight
from tests.conftest import REPO
from tests.t0 import cluster_objects as objs

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_") and k != "VAGRANT_DOTFILE_PATH"}


@pytest.fixture
def project(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    return tmp_path


def load(project, **env):
    return settings_mod.load(project, {**CLEAN_ENV, **env})


def vagrant_made(project, *names, provider="libvirt"):
    """What `vagrant up` leaves for each machine: .vagrant/machines/<name>/<provider>/id (a libvirt domain UUID)."""
    for i, name in enumerate(names):
        folder = project / ".vagrant/machines" / name / provider
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "id").write_text(f"8b1c5e0a-4f2d-4c7e-9a51-3d6f2b7c1e0{i}")


def test_created_vms_are_the_machines_vagrant_holds_an_id_for(project):
    vagrant_made(project, "ubuntu", "worker-1")
    # `vagrant destroy` removes the id and keeps the folder: that machine is gone
    (project / ".vagrant/machines/worker-2/libvirt").mkdir(parents=True)
    assert nodeset.created(load(project), CLEAN_ENV) == ["ubuntu", "worker-1"]


@pytest.mark.parametrize("built, env, fix", [
    (["ubuntu", "worker-1"], {}, "set LABKIT_WORKERS=1 in this shell as when the lab was built"),
    (["ubuntu", "worker-1", "worker-2"], {}, "set LABKIT_WORKERS=2 in this shell"),
    (["ubuntu", "worker-1", "worker-2"], {"LABKIT_WORKERS": "1"}, "set LABKIT_WORKERS=2 in this shell"),
    (["ubuntu", "node-b"], {}, "give settings the nodes the lab was built with again"),
])
def test_vms_that_settings_do_not_name_are_one_line_naming_the_setting(project, built, env, fix):
    s = load(project, **env)
    problem = nodeset.vm_problem(s, built, {**CLEAN_ENV, **env})
    extra = [b for b in built if b not in {n.name for n in s.nodes}]
    assert problem.message.startswith(f"this lab has the VM{'s' if len(extra) > 1 else ''} {', '.join(extra)}, "
                                      "which settings here do not list")
    assert fix in problem.fix


def test_more_nodes_in_settings_than_built_is_how_a_lab_grows(project):
    assert nodeset.vm_problem(load(project, LABKIT_WORKERS="2"), ["ubuntu"], CLEAN_ENV) is None
    assert nodeset.vm_problem(load(project), [], CLEAN_ENV) is None


class FakeVagrant:
    def __init__(self):
        self.calls = []

    def status(self, node):
        self.calls.append(("status", node))
        return "running"

    def snapshots(self, node):
        return []

    def stream(self, step, *args):
        self.calls.append(args)


@pytest.mark.parametrize("task", [vm.halt, vm.snapshot, vm.destroy, vm.up])
def test_vm_tasks_over_every_node_stop_before_vagrant_when_workers_are_forgotten(project, monkeypatch, task):
    vagrant_made(project, "ubuntu", "worker-1")
    for key in [k for k in os.environ if k.startswith("LABKIT_")]:
        monkeypatch.delenv(key)
    fake = FakeVagrant()
    monkeypatch.setattr(vm, "vagrant_for", lambda s: fake)
    monkeypatch.setattr(preflight, "preflight", lambda s, vg, nodes, log: {n.name: "running" for n in nodes})
    with pytest.raises(Exit) as info:
        task(Context(Config(overrides={"labkit": {"root": str(project)}})))
    assert info.value.code == 1 and "\n" not in info.value.message
    assert info.value.message.startswith("labkit: this lab has the VM worker-1, which settings here do not list "
                                         "(they name 1 node (ubuntu)). Fix: set LABKIT_WORKERS=1")
    assert fake.calls == []  # nothing halted, saved or destroyed on the master alone
    monkeypatch.setenv("LABKIT_WORKERS", "1")  # the fix it names: the same task then acts on both
    task(Context(Config(overrides={"labkit": {"root": str(project)}})), **({"save": "s1"} if task is vm.snapshot else {}))
    if task is vm.halt:
        assert [c for c in fake.calls if c[0] == "halt"] == [("halt", "ubuntu"), ("halt", "worker-1")]


def test_one_node_with_a_node_option_is_never_stopped(project, monkeypatch):
    vagrant_made(project, "ubuntu", "worker-1")
    for key in [k for k in os.environ if k.startswith("LABKIT_")]:
        monkeypatch.delenv(key)
    fake = FakeVagrant()
    monkeypatch.setattr(vm, "vagrant_for", lambda s: fake)
    vm.halt(Context(Config(overrides={"labkit": {"root": str(project)}})), node="ubuntu")
    assert ("halt", "ubuntu") in fake.calls


# --- the API's Nodes -----------------------------------------------------------------------------------

class Api:
    def __init__(self, names, master_taints):
        self.names, self.taints, self.patches = names, master_taints, []

    def nodes(self):
        return [objs.node(name=n, master=(i == 0), taints=self.taints if i == 0 else None)
                for i, n in enumerate(self.names)]

    def set_taints(self, node, taints):
        self.patches.append((node, taints))
        self.taints = taints


def test_a_cluster_with_a_worker_that_settings_forgot_stops_before_the_taint(project, capsys):
    s = load(project)
    api = Api(["ubuntu", "worker-1"], [objs.MASTER_TAINT])
    plan = [step for step in init_plan(s) if isinstance(step, (CheckNodes, MasterTaint))]
    with pytest.raises(LabkitError) as info:
        steps.run(plan, steps.Context(s, 60, open_api=lambda: api))
    assert info.value.message == ("the cluster has the node worker-1, which settings here do not list "
                                  "(they name 1 node (ubuntu))")
    assert "LABKIT_WORKERS=1" in info.value.fix
    assert api.patches == []  # the taint stays: the worker still runs the pods


@pytest.mark.parametrize("env, before, after", [
    ({}, [objs.MASTER_TAINT], []),                                               # one node: removed
    ({}, [], None),                                                              # one node, already gone
    ({"LABKIT_WORKERS": "1"}, [], [objs.MASTER_TAINT]),                          # workers, gone: put back
    ({"LABKIT_WORKERS": "1"}, [objs.MASTER_TAINT], None),                        # workers, there: kept
    ({"LABKIT_WORKERS": "1", "LABKIT_MASTER_RUNS_PODS": "true"}, [objs.MASTER_TAINT], []),  # master runs pods
    ({"LABKIT_WORKERS": "1"}, [objs.NOT_READY_TAINT], [objs.NOT_READY_TAINT, objs.MASTER_TAINT]),  # others kept
])
def test_the_master_taint_converges_both_ways(project, env, before, after):
    s = load(project, **env)
    api = Api([n.name for n in s.nodes], before)
    steps.run([MasterTaint(s)], steps.Context(s, 60, open_api=lambda: api))
    assert api.patches == ([] if after is None else [("ubuntu", after)])


# --- machine-id and product_uuid -------------------------------------------------------------------------

def facts(machine_id, product_uuid):
    # FACTS_SCRIPT's lines: /etc/machine-id (32 lower-case hex digits), /sys/class/dmi/id/product_uuid (upper case
    # on VirtualBox and QEMU/libvirt's SMBIOS alike)
    return nodeops.Facts.parse(f"machine_id={machine_id}\nproduct_uuid={product_uuid}\n")


ID_A, ID_B = "5f2a8c1e9d3b4e7a8c6f1b2d3e4a5c6d", "0c9e7b5a3f1d4c2e8b6a4f2d0e9c7b5a"
UUID_A, UUID_B = "8B1C5E0A-4F2D-4C7E-9A51-3D6F2B7C1E00", "8B1C5E0A-4F2D-4C7E-9A51-3D6F2B7C1E01"


def test_nodes_with_their_own_identities_pass():
    assert nodeset.identity_problem({"ubuntu": facts(ID_A, UUID_A), "worker-1": facts(ID_B, UUID_B)}) is None


def test_a_shared_machine_id_is_one_line_with_the_fix():
    problem = nodeset.identity_problem({"ubuntu": facts(ID_A, UUID_A), "worker-1": facts(ID_A, UUID_B)})
    assert problem.message == f"ubuntu and worker-1 have the same machine-id (Weave Net would give both one peer name): {ID_A}"
    assert "invoke vm.provision --node worker-1 --step base" in problem.fix


def test_a_shared_product_uuid_is_one_line_with_the_fix():
    problem = nodeset.identity_problem({"ubuntu": facts(ID_A, UUID_A), "worker-1": facts(ID_B, UUID_A.lower())})
    assert "ubuntu and worker-1 have the same product_uuid" in problem.message
    assert "invoke vm.destroy --node worker-1" in problem.fix


def test_an_unreadable_identity_is_not_a_collision():
    assert nodeset.identity_problem({"ubuntu": facts("", ""), "worker-1": facts("", "")}) is None
