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
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, need, need_binary, need_root, stop_process
from tests.t2 import testbundle

INVOKE = [sys.executable, "-m", "invoke"]
NODE_IP = os.environ.get("T2_NODE_IP", "192.168.56.10")  # other sessions on one host pick another
NODE_NAME = "labkit-t2"  # not the lab's "ubuntu": a user's own VM keeps its name


@dataclass
class LabVM:
    settings: object  # labkit Settings as the tasks see them (settings.root: the project's copy)
    env: dict  # environment to run invoke with
    up_output: str  # what the first `invoke vm.up` printed
    users_lab: dict  # the real checkout's lab state before the session (users_lab_state)

    def invoke(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return invoke(self.env, *args, timeout=timeout, cwd=self.settings.root)

    def ssh(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.invoke("vm.ssh", "--command", command, timeout=timeout)


def invoke(env: dict, *args: str, timeout: float = 1800, cwd: Path) -> subprocess.CompletedProcess:
    """Run the project's own CLI in `cwd`, exactly as a user would (output captured, nothing hidden)."""
    proc = subprocess.run(INVOKE + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(f"\n$ invoke {' '.join(args)}  (exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
    return proc


def virsh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True)


def copy_project(dest: Path) -> Path:
    """The project's files as git knows them (tracked, plus new files not ignored), none of its local state."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():  # a file deleted in the working tree is still listed as cached
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def tree_state(path: Path) -> dict:
    """Every file and link under `path` with its content hash and mtime (empty if `path` is absent)."""
    import hashlib

    state = {}
    for p in sorted(path.rglob("*")) if path.exists() else []:
        if p.is_symlink():
            state[str(p)] = ("link", os.readlink(p))
        elif p.is_file():
            state[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return state


def users_lab_state() -> dict:
    """What belongs to the user of this checkout: its .vagrant/ and .labkit/ trees, its libvirt domains."""
    from labkit import libvirt

    prefix = libvirt.domain_name(REPO, "")
    domains = sorted(d for d in virsh("list", "--all", "--name").stdout.split() if d.startswith(prefix))
    return {"vagrant": tree_state(REPO / ".vagrant"), "labkit": tree_state(REPO / ".labkit"), "domains": domains}


def forget_test_box(box: str = testbundle.BOX_NAME) -> None:
    """Remove the installed test box and its libvirt base volume, so vm.up must add it from the bundle."""
    # run outside any project: Vagrant writes .vagrant/rgloader/ into the Vagrantfile's directory it runs in
    subprocess.run(["vagrant", "box", "remove", "--force", "--all", box], capture_output=True,
                   cwd=tempfile.gettempdir())
    prefix = box.replace("/", "-VAGRANTSLASH-")
    for line in virsh("vol-list", "default").stdout.splitlines()[2:]:
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix):
            virsh("vol-delete", "--pool", "default", name)


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


def classroom_fetch(env: dict, lock: Path, staging: Path, bundle: Path, port: int, project: Path) -> None:
    """`invoke bundle.serve` on the instructor's bundle, `invoke bundle.fetch --from` into the student's
    (with the student's settings: the fetch takes the box of the student's provider)."""
    server = subprocess.Popen(INVOKE + ["bundle.serve", "--lock", str(lock), "--dest", str(staging),
                                        "--host", "127.0.0.1", "--port", str(port)],
                              cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300  # serve verifies every hash first
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, f"bundle.serve exited: {server.stdout.read()}"
                assert time.monotonic() < deadline, "bundle.serve did not listen within 300 s"
                time.sleep(0.5)
        fetched = invoke(env, "bundle.fetch", "--lock", str(lock), "--dest", str(bundle),
                         "--from", f"http://127.0.0.1:{port}", cwd=project)
        assert fetched.returncode == 0, "the classroom fetch failed (output above)"
        assert (bundle / "CHECKSUMS").read_text() == (staging / "CHECKSUMS").read_text()
    finally:
        stop_process(server, 30)


def pytest_collection_modifyitems(config, items):
    """The lifecycle test halts and destroys the shared VM: run it after every other T2 test; the
    acceptance run (snapshot, halt, up) just before it, and the two-node test (its own master + worker)
    after that, once the single VM is gone, then the arm64 guest (its own VM); the check that the user's
    own lab is untouched last."""
    order = ("test_acceptance", "test_vm_lifecycle", "test_multinode", "test_arm64", "test_users_lab")
    items.sort(key=lambda item: next((i + 1 for i, name in enumerate(order) if name in item.nodeid), 0))


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)

