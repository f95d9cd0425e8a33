"""T0: vm tasks over every node, against a stand-in for Vagrant (VirtualBox cannot run here; T2 runs libvirt)."""
from __future__ import annotations


import pytest
from invoke import Exit

from labkit.tasks import vm
from tests.support.vagrant import FakeVagrant, NEW, run


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
