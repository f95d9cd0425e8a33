"""The kubeconfig exported to the laptop (0600, host-only server) and to the VM user, idempotently."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from labkit import settings as settings_mod
from labkit.backends import Local
from labkit.cluster import kubeconfig
from labkit.errors import LabkitError
from labkit import steps
from labkit.cluster.actions.kubeconfig import ExportKubeconfig
from tests.support.cluster import ADMIN_CONF, KEY

REPO = Path(__file__).resolve().parents[2]


def test_laptop_copy_points_at_the_host_only_address_and_keeps_credentials():
    out = yaml.safe_load(kubeconfig.for_laptop(ADMIN_CONF, "https://192.168.56.10:6443"))
    src = yaml.safe_load(ADMIN_CONF)
    assert out["clusters"][0]["cluster"]["server"] == "https://192.168.56.10:6443"
    assert out["clusters"][0]["cluster"]["certificate-authority-data"] == "LS0tLS1DQQ=="
    assert out["users"] == src["users"]
    assert out["current-context"] == "kubernetes-admin@kubernetes"
    assert kubeconfig.server_of(kubeconfig.for_laptop(ADMIN_CONF, "https://192.168.56.10:6443")) == "https://192.168.56.10:6443"


@pytest.mark.parametrize("bad", ["", "not: [yaml", "kind: Config\n", "clusters: []\nusers: [{name: a}]\n",
                                 "clusters: [oops]\nusers: [{name: a}]\n"])
def test_something_that_is_not_a_kubeconfig_is_refused_without_quoting_it(bad):
    with pytest.raises(LabkitError) as err:
        kubeconfig.for_laptop(bad, "https://192.168.56.10:6443")
    assert "admin.conf is not a kubeconfig" in err.value.message
    assert "invoke cluster.reset" in err.value.fix


class NodeOnDisk(Local):
    """A node stand-in: this machine's shell, with the node's /etc/kubernetes and $HOME under tmp.

    The real commands (cat, cmp, the kubeconfig script) run; only `sudo -n` and the absolute
    path are mapped, since tests do not own /etc/kubernetes.
    """

    name = "ubuntu"

    def __init__(self, root: Path):
        super().__init__(prefix=["env", f"HOME={root / 'home'}"])
        self.root = root

    def run(self, argv, timeout=30, stdin=None):
        argv = [a.replace("/etc/kubernetes", str(self.root / "etc/kubernetes")).replace("sudo -n ", "")
                for a in argv]
        if argv[:2] == ["sudo", "-n"]:
            argv = argv[2:]
        return super().run(argv, timeout, stdin)


def project_and_node(tmp_path):
    """A project (settings + provision/) and a node on disk whose kubeadm wrote admin.conf."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "settings.yaml", root)
    shutil.copytree(REPO / "provision", root / "provision")
    node_root = tmp_path / "node"
    (node_root / "etc/kubernetes").mkdir(parents=True)
    (node_root / "home").mkdir()
    (node_root / "etc/kubernetes/admin.conf").write_text(ADMIN_CONF)
    return settings_mod.load(root, {}), NodeOnDisk(node_root), node_root


def export(s, backend):
    steps.run([ExportKubeconfig(s)], steps.Context(s, reach=lambda name: backend))


def test_export_writes_both_copies_0600_then_skips_and_never_prints_the_key(tmp_path, capsys):
    s, backend, node_root = project_and_node(tmp_path)

    export(s, backend)
    laptop = s.state_dir / "kubeconfig"
    vm_user = node_root / "home/.kube/config"
    assert kubeconfig.server_of(laptop.read_text()) == f"https://{s.master.ip}:6443"
    assert vm_user.read_text() == ADMIN_CONF
    if os.name == "posix":
        assert stat.S_IMODE(laptop.stat().st_mode) == 0o600
        assert stat.S_IMODE(vm_user.stat().st_mode) == 0o600
    first = capsys.readouterr().out
    assert "Exporting the kubeconfig" in first and "skipped" not in first

    export(s, backend)  # second run: nothing to do
    second = capsys.readouterr().out
    assert "(both already current)" in second
    assert KEY not in first + second

    # The cluster was re-initialized (new admin.conf): both copies follow.
    (node_root / "etc/kubernetes/admin.conf").write_text(ADMIN_CONF.replace(KEY, "bmV3a2V5"))
    export(s, backend)
    assert "bmV3a2V5" in laptop.read_text() and "bmV3a2V5" in vm_user.read_text()
    assert "already current" not in capsys.readouterr().out


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_widened_mode_goes_back_to_0600_even_when_the_content_is_current(tmp_path, capsys):
    s, backend, node_root = project_and_node(tmp_path)
    export(s, backend)
    laptop, vm_user = s.state_dir / "kubeconfig", node_root / "home/.kube/config"
    for path in (laptop, vm_user):
        path.chmod(0o644)  # e.g. a copy made readable by hand

    export(s, backend)
    assert "(both already current)" in capsys.readouterr().out
    assert stat.S_IMODE(laptop.stat().st_mode) == 0o600
    assert stat.S_IMODE(vm_user.stat().st_mode) == 0o600
