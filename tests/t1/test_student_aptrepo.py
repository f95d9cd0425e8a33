"""T1: provision/aptrepo.sh builds the local Kubernetes apt repository for real (dpkg-deb, bash),
and real apt/dpkg install from it in a Debian bookworm chroot with no other package source: the
lab's section 2 command, verbatim and with the version pinned.

The Kubernetes binaries are stand-ins (tests/student_repo.py); the packages around them, their
control files, unit files and the repository index are the real thing.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO, need_binary, need_root, python_rootfs_tarball
from tests import student_repo

pytestmark = pytest.mark.t1

VERSION = "v1.15.12"
FILES = REPO / "provision" / "files"
LAB_COMMAND = "apt-get install -y kubelet kubeadm kubectl kubernetes-cni"  # section 2, verbatim
PINNED = "apt-get install -y kubelet=1.15.12-00 kubeadm=1.15.12-00 kubectl=1.15.12-00"


def step(bundle: Path, apt_dir: Path, version: str = VERSION) -> subprocess.CompletedProcess:
    env = {**os.environ, "LABKIT_BUNDLE": str(bundle), "LABKIT_NODE_NAME": "ubuntu", "LABKIT_NODE_IP": "192.168.56.10",
           "LABKIT_NODE_ROLE": "master", "LABKIT_MASTER_IP": "192.168.56.10", "LABKIT_K8S_VERSION": version,
           "LABKIT_DOCKER_VERSION": "18.09.9", "LABKIT_APT_DIR": str(apt_dir)}
    return subprocess.run(["bash", str(REPO / "provision" / "aptrepo.sh")], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    need_root()
    need_binary("dpkg-deb")
    work = tmp_path_factory.mktemp("aptrepo")
    rootfs = python_rootfs_tarball()
    debs = student_repo.base_debs(rootfs, student_repo.KUBELET_DEPENDS)
    bundle = work / "bundle"
    student_repo.build(bundle, VERSION, debs)
    apt_dir = work / "apt"
    first = step(bundle, apt_dir)
    return work, rootfs, bundle, apt_dir, first


def fields(deb: Path) -> dict:
    out = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^([\w-]+): (.*)$", out, re.M))


def contents(deb: Path) -> set:
    out = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].lstrip(".") for line in out.splitlines() if not line.endswith("/")}


def test_the_repository_is_built_once_from_the_bundle(built):
    work, _, bundle, apt_dir, first = built
    assert first.returncode == 0, first.stdout + first.stderr
    assert (f"built the local package repository {apt_dir} (kubernetes-xenial main): kubelet kubeadm kubectl 1.15.12-00, "
            "kubernetes-cni 0.7.5-00, cri-tools 1.13.0-00") in first.stdout
    release = (apt_dir / "dists/kubernetes-xenial/Release").read_text()
    assert "Suite: kubernetes-xenial" in release and "Components: main" in release
    before = {p: p.stat().st_mtime_ns for p in apt_dir.rglob("*")}
    again = step(bundle, apt_dir)
    assert again.returncode == 0
    assert f"skip: local package repository {apt_dir} (already built from these bundle files)" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in apt_dir.rglob("*")} == before


def test_packages_have_the_official_names_versions_depends_and_files(built):
    _, _, _, apt_dir, _ = built
    pool = apt_dir / "pool" / "main"
    want = {"kubelet": "1.15.12-00", "kubeadm": "1.15.12-00", "kubectl": "1.15.12-00",
            "kubernetes-cni": "0.7.5-00", "cri-tools": "1.13.0-00"}
    for name, version in want.items():
        f = fields(pool / f"{name}_{version}_amd64.deb")
        assert (f["Package"], f["Version"], f["Architecture"]) == (name, version, "amd64")
    kubelet = fields(pool / "kubelet_1.15.12-00_amd64.deb")["Depends"]
    assert kubelet == ("iptables (>= 1.4.21), kubernetes-cni (>= 0.7.5), iproute2, socat, util-linux, mount, "
                       "ebtables, ethtool, conntrack")
    assert fields(pool / "kubeadm_1.15.12-00_amd64.deb")["Depends"] == (
        "kubelet (>= 1.13.0), kubectl (>= 1.13.0), kubernetes-cni (>= 0.7.5), cri-tools (>= 1.13.0)")
    assert contents(pool / "kubelet_1.15.12-00_amd64.deb") == {"/usr/bin/kubelet", "/lib/systemd/system/kubelet.service"}
    assert contents(pool / "kubeadm_1.15.12-00_amd64.deb") == {
        "/usr/bin/kubeadm", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"}
    assert contents(pool / "kubectl_1.15.12-00_amd64.deb") == {"/usr/bin/kubectl"}
    assert contents(pool / "cri-tools_1.13.0-00_amd64.deb") == {"/usr/bin/crictl"}
    assert {"/opt/cni/bin/loopback", "/opt/cni/bin/portmap", "/opt/cni/bin/bridge"} == contents(
        pool / "kubernetes-cni_0.7.5-00_amd64.deb")
    conffiles = subprocess.run(["dpkg-deb", "--info", str(pool / "kubeadm_1.15.12-00_amd64.deb"), "conffiles"],
                               capture_output=True, text=True, check=True).stdout
    assert conffiles.split() == ["/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"]


@pytest.fixture
def chroot(built, tmp_path):
    """A bookworm root filesystem whose only package source is the lab's section 1 line."""
    _, rootfs, _, apt_dir, _ = built
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(rootfs) as tar:
        tar.extractall(root, numeric_owner=True)
    (root / "etc/apt/sources.list").write_text("")
    for extra in (root / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    source = (FILES / "kubernetes.list").read_text()
    target = root / source.split()[2].removeprefix("file:").lstrip("/")
    shutil.copytree(apt_dir, target)
    (root / "etc/apt/sources.list.d/kubernetes.list").write_text(source)

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["chroot", str(root), "sh", "-c", command], capture_output=True, text=True, timeout=300,
                              env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})

    run.root = root
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield run
    finally:
        subprocess.run(["umount", "--lazy", str(root / "proc")], check=True)


def installed(run) -> dict:
    out = run("dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' kubelet kubeadm kubectl "
              "kubernetes-cni cri-tools").stdout
    return {p: v for p, v, status in (line.split() for line in out.splitlines()) if status == "ii"}


def test_the_lab_command_installs_from_the_local_repository(chroot):
    update = chroot("apt-get update")
    assert update.returncode == 0, update.stdout + update.stderr
    assert re.search(r"file:/opt/labkit/apt kubernetes-xenial Release", update.stdout)
    policy = chroot("apt-cache policy kubeadm").stdout
    assert "Candidate: 1.15.12-00" in policy and "file:/opt/labkit/apt kubernetes-xenial/main amd64" in policy
    result = chroot(LAB_COMMAND)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    extra = result.stdout.split("The following additional packages will be installed:")[1].split("The following")[0]
    assert {"conntrack", "cri-tools", "ebtables", "socat"} <= set(extra.split())  # as in the lab's transcript
    for line in ("Setting up kubernetes-cni (0.7.5-00) ...", "Setting up kubelet (1.15.12-00) ...",
                 "Setting up kubeadm (1.15.12-00) ...", "Setting up cri-tools (1.13.0-00) ..."):
        assert line in result.stdout
    assert installed(chroot) == {"kubelet": "1.15.12-00", "kubeadm": "1.15.12-00", "kubectl": "1.15.12-00",
                                 "kubernetes-cni": "0.7.5-00", "cri-tools": "1.13.0-00"}
    root = chroot.root
    assert (root / "lib/systemd/system/kubelet.service").read_text() == (FILES / "kubelet.service").read_text()
    assert (root / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf").read_text() == (
        FILES / "10-kubeadm.conf").read_text()
    assert (root / "etc/kubernetes/manifests").is_dir()
    assert chroot("kubeadm version -o short").stdout.strip() == VERSION  # the bundle's binary, on PATH
    assert os.access(root / "usr/bin/crictl", os.X_OK) and os.access(root / "opt/cni/bin/loopback", os.X_OK)


def test_the_version_pinned_command_installs_and_purge_leaves_nothing(chroot):
    assert chroot("apt-get update").returncode == 0
    pinned = chroot(PINNED)
    assert pinned.returncode == 0, pinned.stdout[-3000:] + pinned.stderr
    assert installed(chroot)["kubeadm"] == "1.15.12-00"
    missing = chroot("apt-get install -y kubeadm=1.15.11-00")
    assert missing.returncode == 100 and "Version '1.15.11-00' for 'kubeadm' was not found" in missing.stderr
    purge = chroot("apt-get purge -y kubelet kubeadm kubectl kubernetes-cni cri-tools")
    assert purge.returncode == 0, purge.stderr
    assert installed(chroot) == {}
    assert not (chroot.root / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf").exists()


def test_a_bundle_binary_of_another_version_stops_the_build_with_one_line(built, tmp_path):
    _, _, bundle, _, _ = built
    out = step(bundle, tmp_path / "apt", version="v1.15.11")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"labkit: the bundle's kubeadm is {VERSION}, settings want v1.15.11. "
        "Fix: make versions.kubernetes and the lock's kubernetes-node tarball agree, then invoke vm.provision"]
    assert not (tmp_path / "apt").exists() and not list(tmp_path.glob(".labkit-apt.*"))


def test_a_corrupt_tarball_is_refused_before_anything_is_built(built, tmp_path):
    _, _, bundle, _, _ = built
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    with open(copy / "cni/cni-plugins-amd64-v0.7.5.tgz", "ab") as fh:
        fh.write(b"x")
    out = step(copy, tmp_path / "apt")
    assert out.returncode == 1
    assert out.stderr.strip() == ("labkit: bundle artifact cni-plugins (cni/cni-plugins-amd64-v0.7.5.tgz) is corrupt "
                                  "(sha512 mismatch). Fix: on the laptop run invoke bundle.fetch --only cni-plugins, "
                                  "then invoke vm.provision")
    assert not (tmp_path / "apt").exists()


def test_the_kits_kubernetes_step_installs_through_the_same_repository_then_skips(chroot):
    """provision/kubernetes.sh in the chroot: sections 1-2 the kit's way (source line, apt-get), then a
    second run that changes nothing. systemd cannot run here (no systemd as PID 1): a stand-in
    `systemctl` records what the step and the packages' scripts ask of it."""
    root = chroot.root
    shutil.copytree(REPO / "provision", root / "opt/provision")
    (root / "etc/labkit").mkdir(parents=True)
    (root / "etc/labkit/resolv.conf").write_text("nameserver 10.0.2.3\n")
    # /usr/bin: apt runs dpkg, and so the packages' scripts, with PATH=/usr/sbin:/usr/bin:/sbin:/bin
    (root / "usr/bin/systemctl").write_text('#!/bin/sh\necho "$*" >> /tmp/systemctl.log\n'
                                           'case "$1" in is-enabled|is-active) exit 1 ;; esac\n')
    (root / "usr/bin/systemctl").chmod(0o755)
    env = ("LABKIT_BUNDLE=/nonexistent LABKIT_NODE_NAME=ubuntu LABKIT_NODE_IP=127.0.0.1 LABKIT_NODE_ROLE=master "
           f"LABKIT_MASTER_IP=127.0.0.1 LABKIT_K8S_VERSION={VERSION} LABKIT_DOCKER_VERSION=18.09.9")
    box = chroot("apt-get update -qq && apt-get install -y -qq iproute2")  # every Ubuntu box has `ip`
    assert box.returncode == 0, box.stderr
    (root / "opt/labkit/apt").rename(root / "opt/labkit/apt.away")
    missing = chroot(f"env {env} bash /opt/provision/kubernetes.sh")
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "labkit: the local package repository /opt/labkit/apt is missing. "
        "Fix: build it first: invoke vm.provision --step aptrepo")
    assert not (root / "etc/default/kubelet").exists()  # stopped before changing anything
    (root / "opt/labkit/apt.away").rename(root / "opt/labkit/apt")
    first = chroot(f"env {env} bash /opt/provision/kubernetes.sh")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "labkit[kubernetes]: installed kubeadm=1.15.12-00 kubectl=1.15.12-00 kubelet=1.15.12-00 from the local package repository" in first.stdout
    assert "wrote /etc/default/kubelet" in first.stdout and "skip: /etc/apt/sources.list.d/kubernetes.list" in first.stdout
    assert installed(chroot) == {"kubelet": "1.15.12-00", "kubeadm": "1.15.12-00", "kubectl": "1.15.12-00",
                                 "kubernetes-cni": "0.7.5-00", "cri-tools": "1.13.0-00"}
    assert (root / "etc/default/kubelet").read_text() == (
        "KUBELET_EXTRA_ARGS=--node-ip=127.0.0.1 --resolv-conf=/etc/labkit/resolv.conf\n")
    calls = (root / "tmp/systemctl.log").read_text().splitlines()
    assert calls.index("enable kubelet") < calls.index("start kubelet")  # the kubelet package's postinst
    assert "restart kubelet" in calls  # kubeadm's: its drop-in takes effect
    second = chroot(f"env {env} bash /opt/provision/kubernetes.sh")
    assert second.returncode == 0, second.stderr
    assert "skip: kubeadm kubectl kubelet (already 1.15.12-00)" in second.stdout
    assert not re.search(r"labkit\[kubernetes\]: (installed|wrote|removed)", second.stdout)


def test_section_checks_and_solve_1_on_a_real_debian_system(chroot):
    """The section 1-2 check commands and section 1's solve, run by labkit through a real backend
    (commands in the chroot), judged from what apt, dpkg and /proc really print there."""
    from labkit.backends import Local
    from labkit.student import progress, sections
    from labkit.student.checks import Want

    root = chroot.root
    (root / "etc/apt/sources.list.d/kubernetes.list").unlink()
    (root / "usr/bin/systemctl").write_text(  # systemd cannot run here: is-enabled answers from the log
        '#!/bin/sh\necho "$*" >> /tmp/systemctl.log\n'
        'if [ "$1" = is-enabled ]; then grep -qx "enable $2" /tmp/systemctl.log && echo enabled && exit 0; '
        'echo disabled; exit 1; fi\n')
    (root / "usr/bin/systemctl").chmod(0o755)
    (root / "usr/bin/sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')  # we are root already
    (root / "usr/bin/sudo").chmod(0o755)
    node = Local(["chroot", str(root)], name="chroot")
    want = Want(source_line=(FILES / "kubernetes.list").read_text().strip(), node="ubuntu",
                versions={"kubelet": "1.15.12-00", "kubeadm": "1.15.12-00", "kubectl": "1.15.12-00",
                          "kubernetes-cni": "0.7.5-00", "cri-tools": "1.13.0-00"})
    before = progress.evaluate(2, node, want, verify_results=list)
    assert [(s.status, s.failure.check.id if s.failure else None) for s in before] == [
        ("not started", "source"), ("not started", None)]
    solved = node.run(["sh", "-c", sections.SECTIONS[1].solve.node(want)], timeout=120)
    assert solved.ok, solved.stderr
    after_1 = progress.evaluate(2, node, want, verify_results=list)
    assert after_1[0].status == "done"
    assert after_1[1].failure.result.cause == "kubelet, kubeadm, kubectl, kubernetes-cni, cri-tools are not installed"
    assert chroot(after_1[1].failure.result.fix.removeprefix("sudo ")).returncode == 0  # the next command, as told
    after_2 = progress.evaluate(2, node, want, verify_results=list)
    # packages and the enabled kubelet pass; swap and sysctl are this machine's own state
    assert [o.result.ok for o in after_2[1].outcomes[:2]] == [True, True]
