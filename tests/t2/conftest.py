"""T2: one real VM (Vagrant + vagrant-libvirt + QEMU/TCG, the offline Debian test box) per test session,
created and driven by the project's own `invoke` tasks.

The tasks run in a copy of the project (its files as git knows them, without .vagrant/, .labkit/,
bundle/ or .venv/), so the copy has its own Vagrant state, its own libvirt domain names (the
Vagrantfile derives them from the project's path) and its own node name: running the suite on an
instructor's laptop touches none of their VMs (test_vm_lifecycle.py checks that last).

The VM is offline: its management network is isolated (no NAT, no default route), so anything that
tries to download fails. scripts/host-setup prepares the machine and builds the box.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from tests.support.env import REPO, free_port, need, need_binary, need_root
from tests.support import testbundle
from tests.support.vm import invoke, LabVM, users_lab_state, virsh
from tests.support.vm import classroom_fetch, copy_project, forget_test_box

NODE_IP = os.environ.get("T2_NODE_IP", "192.168.56.10")  # other sessions on one host pick another
NODE_NAME = "labkit-t2"  # not the lab's "ubuntu": a user's own VM keeps its name



@pytest.fixture(scope="session")
def t2_host():
    need_root()
    for tool in ("vagrant", "virsh", "qemu-system-x86_64", "rsync"):
        need_binary(tool)
    need(virsh("version").returncode == 0, "libvirtd is not running (run scripts/host-setup)")
    need("vagrant-libvirt" in subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True,
                                             cwd=tempfile.gettempdir()).stdout,
         "the vagrant-libvirt plugin is missing (run scripts/host-setup)")
    need(testbundle.BOX_FILE.is_file(), f"no test box at {testbundle.BOX_FILE} (run scripts/build-test-box)")


@pytest.fixture(scope="session")
def lab_vm(t2_host, tmp_path_factory, dockerd, stand_in_image):
    from labkit import settings as settings_mod

    users_lab = users_lab_state()
    work = tmp_path_factory.mktemp("t2")
    project = copy_project(work / "labkit")
    # app.build's base image, standing in for the real bundle's: the VM gets it by docker load.
    base = stand_in_image(settings_mod.load(REPO, {}).data["images"]["inv_base"])
    # The instructor's bundle, served to the classroom; the student's laptop fetches it from there.
    port = free_port()
    staging = work / "instructor-bundle"
    lock, facts = testbundle.build(staging, mirror=f"http://127.0.0.1:{port}", docker_url=dockerd.url,
                                   images=(base,))
    bundle = work / "bundle"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env.update({
        "LABKIT_PROVIDER": "libvirt",
        "LABKIT_BOXES__LIBVIRT": testbundle.BOX_NAME,
        "LABKIT_VM__LIBVIRT_DRIVER": "qemu",  # /dev/kvm here cannot run a stock kernel: TCG
        "LABKIT_VM__LIBVIRT_MANAGEMENT_NETWORK": "none",  # offline guest
        "LABKIT_NODES__0__NAME": NODE_NAME,
        "LABKIT_NODES__0__IP": NODE_IP,
        "LABKIT_BUNDLE__DIR": str(bundle),
        "LABKIT_BUNDLE__LOCK": str(lock),
        "LABKIT_PROVISION": "[base, docker]",  # the test bundle has no Kubernetes 1.15 binaries
        "LABKIT_VERSIONS__DOCKER": facts["docker_version"],  # Debian's docker.io, not Ubuntu's docker-ce
    })
    settings = settings_mod.load(project, env)
    classroom_fetch(env, lock, staging, bundle, port, project)
    invoke(env, "vm.destroy", cwd=project)  # a leftover domain of an aborted run (same tmp path)
    forget_test_box()
    up = invoke(env, "vm.up", timeout=2400, cwd=project)
    vm = LabVM(settings=settings, env=env, up_output=up.stdout + up.stderr, users_lab=users_lab)
    try:
        assert up.returncode == 0, "invoke vm.up failed (output above)"
        yield vm
    finally:
        invoke(env, "vm.destroy", cwd=project)
        forget_test_box()



def pytest_collection_modifyitems(config, items):
    """The lifecycle test halts and destroys the shared VM: run it after every other T2 test; the
    acceptance run (snapshot, halt, up) just before it, and the two-node test (its own master + worker)
    after that, once the single VM is gone, then the arm64 guest (its own VM); the check that the user's
    own lab is untouched last."""
    order = ("test_acceptance", "test_vm_lifecycle", "test_multinode", "test_arm64", "test_users_lab")
    items.sort(key=lambda item: next((i + 1 for i, name in enumerate(order) if name in item.nodeid), 0))



