"""The T2 lab VM: running the project's tasks in its copy, virsh, SSH steps, the user's own lab state."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.env import REPO


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
