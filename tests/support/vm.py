"""The T2 lab VM: running the project's tasks in its copy, virsh, SSH steps, the user's own lab state."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import testbundle
from tests.support.env import REPO, stop_process


INVOKE = [sys.executable, "-m", "invoke"]


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


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


# Lines a step prints when it changes something; a second run must print none of them.
CHANGED = re.compile(r"labkit\[\w+\]: (installing|installed|wrote|loaded|started|restarted|applied|added|turned|"
                     r"commented|enabled|reloaded|unpacked|/etc/hosts:)")


def sh(guest, script: str, timeout: float = 120, sudo: bool = True):
    return guest.run((["sudo", "-n"] if sudo else []) + ["bash", "-c", script], timeout=timeout)


def step_env(settings, bundle: str, k8s_version: str | None = None) -> str:
    node = settings.master
    env = {"LABKIT_BUNDLE": bundle, "LABKIT_NODE_NAME": node.name, "LABKIT_NODE_IP": node.ip,
           "LABKIT_NODE_ROLE": node.role, "LABKIT_MASTER_IP": node.ip,
           "LABKIT_K8S_VERSION": k8s_version or settings.versions["kubernetes"],
           "LABKIT_DOCKER_VERSION": settings.versions["docker"]}
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())


def run_step(guest, settings, step: str, bundle: str, k8s_version: str | None = None):
    """A step exactly as the Vagrantfile sends it (the assembled inline script), with our bundle path."""
    script = subprocess.run(["ruby", "-e", f'require "./vagrant/provision_script"; print LabkitProvision.script(".", "{step}")'],
                            cwd=settings.root, capture_output=True, text=True, check=True).stdout
    return guest.run(f"sudo -n env {step_env(settings, bundle, k8s_version)} bash -s", timeout=600, stdin=script.encode())


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


STATE_FILES = ["/etc/hosts", "/etc/fstab", "/etc/docker/daemon.json", "/etc/sysctl.d/90-labkit-kubernetes.conf",
               "/etc/modules-load.d/labkit-kubernetes.conf", "/etc/labkit/resolv.conf"]


SNAPSHOT = f"""
sha256sum {' '.join(STATE_FILES)}
stat -c '%n mtime=%Y inode=%i mode=%a' {' '.join(STATE_FILES)}
dpkg-query -W -f='${{Package}} ${{Version}} ${{Status}}\\n'
docker images --no-trunc --format '{{{{.Repository}}}}:{{{{.Tag}}}} {{{{.ID}}}}'
echo "dockerd pid $(systemctl show -p MainPID --value docker)"
getent group docker
"""
