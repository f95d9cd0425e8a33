"""T0: section checks on a cluster the student made with kubeadm init: with no exported kubeconfig, the
admin credentials are read from the VM (a stand-in answers for it), written 0600 and never shown."""
from __future__ import annotations

import stat

import yaml

from labkit import settings as settings_mod
from labkit.backends import CommandResult
from labkit.kube import kubeconfig_path
from labkit.student import live
from tests.conftest import REPO
from tests.t0.test_cluster_kubeconfig import ADMIN_CONF, KEY


class Node:
    def __init__(self, result: CommandResult):
        self.result, self.asked = result, []

    def run(self, argv, timeout=30, stdin=None):
        self.asked.append(list(argv))
        return self.result


class Lab:
    """The section tasks' view: settings and the master's backend."""

    def __init__(self, node):
        self.s, self.node = settings_mod.load(REPO, {}), node
        self.master = self.s.master

    def laptop_kubeconfig(self):
        live.laptop_kubeconfig(self.s, self.node)


def lab_with(node, tmp_path, monkeypatch):
    monkeypatch.setattr(type(settings_mod.load(REPO, {})), "state_dir", property(lambda s: tmp_path / "state"))
    return Lab(node)


def test_the_vms_admin_credentials_become_the_laptops_kubeconfig_once(tmp_path, monkeypatch, capsys):
    node = Node(CommandResult(0, ADMIN_CONF, "", 0.1))
    lab = lab_with(node, tmp_path, monkeypatch)
    lab.laptop_kubeconfig()
    path = kubeconfig_path(lab.s)
    assert node.asked == [["sudo", "-n", "cat", "/etc/kubernetes/admin.conf"]]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"] == f"https://{lab.master.ip}:6443"
    shown = capsys.readouterr()
    assert f"into {path} (0600, not shown)" in shown.out and KEY not in shown.out + shown.err
    lab.laptop_kubeconfig()  # already current: nothing written, nothing said
    assert capsys.readouterr().out == ""


def test_no_admin_conf_on_the_vm_leaves_the_laptop_alone(tmp_path, monkeypatch, capsys):
    node = Node(CommandResult(1, "", "cat: /etc/kubernetes/admin.conf: No such file or directory", 0.1))
    lab = lab_with(node, tmp_path, monkeypatch)
    lab.laptop_kubeconfig()
    assert not kubeconfig_path(lab.s).exists() and capsys.readouterr().out == ""
