"""T2: the Apple Silicon path on this x86-64 machine: an arm64 guest under QEMU's aarch64 emulation
(vagrant-libvirt, TCG), made by the project's own `invoke` tasks with settings arch: arm64.

The guest is the arm64 Debian test box (`scripts/build-test-box arm64`); its bundle holds Debian's
arm64 .debs and an arm64 busybox image under arm64/, as the real lock keeps the arm64 artifacts.
The instructor's bundle is served and a "Mac" fetches it with LABKIT_ARCH=arm64; `invoke vm.up`
adds the box from the bundle, boots it offline (isolated management network) and provisions it
(base, docker); `invoke vm.provision` then runs the same steps again and must change nothing.
One VM for the module: about 5 min with the box cached on the loaded 2-core test machine (README).
"""
from __future__ import annotations

import os
import time

import pytest

from tests.support.env import free_port, need, need_binary
from tests.support import testbundle
from tests.support.vm import classroom_fetch, copy_project, forget_test_box, invoke
from tests.support.vm import CHANGED, SNAPSHOT

pytestmark = pytest.mark.t2

NODE_IP = os.environ.get("T2_ARM64_NODE_IP", "192.168.56.40")  # apart from the amd64 T2 VM's
NODE_NAME = "labkit-t2-arm64"


@pytest.fixture(scope="module")
def arm64_vm(t2_host, tmp_path_factory, dockerd):
    from labkit import settings as settings_mod
    from labkit.backends import get_backend

    need_binary("qemu-system-aarch64")
    need(testbundle.ARM64_BOX_FILE.is_file(),
         f"no arm64 test box at {testbundle.ARM64_BOX_FILE} (run scripts/build-test-box arm64)")
    work = tmp_path_factory.mktemp("t2-arm64")
    project = copy_project(work / "labkit")
    port = free_port()
    staging = work / "instructor-bundle"
    lock, facts = testbundle.build(staging, mirror=f"http://127.0.0.1:{port}", docker_url=dockerd.url, arch="arm64")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env.update({
        "LABKIT_ARCH": "arm64",  # what arch: auto says on an Apple Silicon laptop
        "LABKIT_PROVIDER": "libvirt",
        "LABKIT_ARM64_BOXES__LIBVIRT": testbundle.ARM64_BOX_NAME,
        "LABKIT_VM__LIBVIRT_DRIVER": "qemu",  # aarch64 on x86-64: TCG
        "LABKIT_VM__LIBVIRT_MANAGEMENT_NETWORK": "none",  # offline guest
        "LABKIT_NODES__0__NAME": NODE_NAME,
        "LABKIT_NODES__0__IP": NODE_IP,
        "LABKIT_BUNDLE__DIR": str(work / "bundle"),
        "LABKIT_BUNDLE__LOCK": str(lock),
        "LABKIT_PROVISION": "[base, docker]",  # the test bundle has no Kubernetes 1.15 binaries
        "LABKIT_VERSIONS__DOCKER": facts["docker_version"],  # Debian's docker.io
    })
    settings = settings_mod.load(project, env)
    classroom_fetch(env, lock, staging, work / "bundle", port, project)
    invoke(env, "vm.destroy", cwd=project)  # a leftover domain of an aborted run
    forget_test_box(testbundle.ARM64_BOX_NAME)
    started = time.monotonic()
    up = invoke(env, "vm.up", timeout=2400, cwd=project)
    print(f"\n[arm64] invoke vm.up: {time.monotonic() - started:.0f} s")
    guest = None
    try:
        assert up.returncode == 0, "invoke vm.up failed (output above)"
        guest = get_backend(f"node:{NODE_NAME}", settings, env)
        yield {"env": env, "project": project, "settings": settings, "facts": facts, "guest": guest,
               "up": up.stdout + up.stderr}
    finally:
        if guest is not None:
            guest.close()
        invoke(env, "vm.destroy", cwd=project)
        forget_test_box(testbundle.ARM64_BOX_NAME)


def run(guest, script: str, timeout: float = 300) -> str:
    result = guest.run(["sudo", "-n", "bash", "-c", script], timeout=timeout)
    assert result.ok, result.stdout + result.stderr
    return result.stdout


def test_the_arm64_guest_runs_the_offline_provisioning(arm64_vm):
    guest, up = arm64_vm["guest"], arm64_vm["up"]
    assert run(guest, "uname -m; dpkg --print-architecture").split() == ["aarch64", "arm64"]
    # offline: the only default route is the kit's dummy one (provision/base.sh), which reaches nothing
    routes = run(guest, "ip -4 route show default").splitlines()
    assert routes and all(" dev labkit0" in r for r in routes), routes
    for step in ("base", "docker"):
        assert f"labkit[{step}]: node {NODE_NAME} (master, {NODE_IP}, arm64)" in up
        assert f"labkit[{step}]: done in" in up
    # its own architecture's artifacts, from arm64/ of the bundle
    assert "labkit[base]: verified" in up and "labkit[docker]: verified" in up
    # the legacy iptables backend (Debian 12 defaults to nftables: the trap newer guests share)
    assert "(legacy)" in run(guest, "iptables --version")
    # Docker runs the bundle's arm64 image, offline
    (tag,) = arm64_vm["facts"]["image_tags"]
    assert run(guest, f"docker run --rm --network none {tag} /bin/busybox uname -m").strip() == "aarch64"
    assert run(guest, "docker version --format '{{.Server.Arch}}'").strip() == "arm64"


def test_provisioning_the_arm64_guest_again_changes_nothing(arm64_vm):
    guest = arm64_vm["guest"]
    before = run(guest, SNAPSHOT)
    started = time.monotonic()
    again = invoke(arm64_vm["env"], "vm.provision", timeout=1800, cwd=arm64_vm["project"])
    print(f"\n[arm64] invoke vm.provision (again): {time.monotonic() - started:.0f} s")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert not CHANGED.findall(out), [line for line in out.splitlines() if CHANGED.search(line)]
    assert "labkit[base]: skip: iptables backend" in out and "labkit[docker]: skip: load" in out
    assert run(guest, SNAPSHOT) == before
