"""T0: vm tasks over every node, against a stand-in for Vagrant (VirtualBox cannot run here; T2 runs libvirt)."""
from __future__ import annotations

import os
import shutil

import pytest
from invoke import Config, Context, Exit

from labkit.tasks import vm
from labkit.vm.actions import preflight
from tests.conftest import REPO


class FakeVagrant:
    def __init__(self, states, snapshots=None):
        self.states, self.snaps, self.calls = dict(states), snapshots or {}, []

    def status(self, node):
        return self.states[node]

    def snapshots(self, node):
        return list(self.snaps.get(node, []))

    def stream(self, step, *args):
        self.calls.append(args)


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    home = tmp_path / "vagrant.d"  # Vagrant's box directory, with the boxes of both providers installed
    for box, provider in (("ubuntu-VAGRANTSLASH-xenial64", "virtualbox"), ("generic-VAGRANTSLASH-ubuntu1604", "libvirt")):
        (home / "boxes" / box / "0" / provider).mkdir(parents=True)
        (home / "boxes" / box / "0" / provider / "metadata.json").write_text(f'{{"provider": "{provider}"}}')
    monkeypatch.setenv("VAGRANT_HOME", str(home))
    return tmp_path


def run(project, monkeypatch, fake, task, env, **kwargs):
    for key in [k for k in os.environ if k.startswith("LABKIT_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(vm, "vagrant_for", lambda s: fake)
    # doctor's checks need VirtualBox, which cannot run here: the states are what preflight returns
    monkeypatch.setattr(preflight, "preflight", lambda s, vg, nodes, log: {n.name: fake.status(n.name) for n in nodes})
    task(Context(Config(overrides={"labkit": {"root": str(project)}})), **kwargs)


NEW = {"ubuntu": "not_created", "worker-1": "not_created", "worker-2": "not_created"}


def test_libvirt_brings_every_node_up_in_one_parallel_vagrant_up(project, monkeypatch):
    fake = FakeVagrant(dict(NEW, ubuntu="running"))
    run(project, monkeypatch, fake, vm.up, {"LABKIT_WORKERS": "2", "LABKIT_PROVIDER": "libvirt"})
    assert fake.calls == [("up", "--parallel", "--provider=libvirt", "worker-1", "worker-2")]


def test_virtualbox_brings_the_nodes_up_one_after_another(project, monkeypatch):
    fake = FakeVagrant(NEW)
    run(project, monkeypatch, fake, vm.up, {"LABKIT_WORKERS": "2"})
    assert fake.calls == [("up", n, "--provider=virtualbox") for n in ("ubuntu", "worker-1", "worker-2")]


def test_snapshots_cover_every_node(project, monkeypatch):
    fake = FakeVagrant({"ubuntu": "running", "worker-1": "running"}, {"ubuntu": ["fresh"], "worker-1": ["fresh"]})
    run(project, monkeypatch, fake, vm.snapshot, {"LABKIT_WORKERS": "1"}, restore="fresh")
    assert fake.calls == [("snapshot", "restore", "--no-provision", n, "fresh") for n in ("ubuntu", "worker-1")]


def test_a_restore_missing_on_one_node_changes_no_node(project, monkeypatch):
    fake = FakeVagrant({"ubuntu": "running", "worker-1": "running"}, {"ubuntu": ["fresh"], "worker-1": []})
    with pytest.raises(Exit) as info:
        run(project, monkeypatch, fake, vm.snapshot, {"LABKIT_WORKERS": "1"}, restore="fresh")
    assert "worker-1 has no snapshot 'fresh'" in str(info.value.message)
    assert fake.calls == []
