"""T1: the real Vagrantfile under the real `vagrant`, and its Ruby settings loader against the Python one."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit import settings
from tests.support.env import REPO, need_binary
from tests.support.vagrantfile import NO_MACHINES

pytestmark = pytest.mark.t1


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env["VAGRANT_DOTFILE_PATH"] = NO_MACHINES
    env.update(extra)
    return env


def vagrant(*args, env=None, cwd=REPO) -> subprocess.CompletedProcess:
    need_binary("vagrant")
    return subprocess.run(["vagrant", *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                          timeout=120)


def test_vagrantfile_validates_ignoring_the_missing_provider():
    out = vagrant("validate", "--ignore-provider")
    assert out.returncode == 0, out.stderr
    assert "Vagrantfile validated successfully" in out.stdout


def test_vagrantfile_validates_with_libvirt_provider_settings():
    # vagrant-libvirt is installed here, so its provider settings (driver, networks) are checked too.
    out = vagrant("validate", env=clean_env(LABKIT_PROVIDER="libvirt", LABKIT_VM__LIBVIRT_DRIVER="qemu",
                                            LABKIT_VM__LIBVIRT_MANAGEMENT_NETWORK="none"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_vagrantfile_defines_one_machine_per_worker():
    out = vagrant("status", "--machine-readable",
                  env=clean_env(LABKIT_PROVIDER="libvirt", LABKIT_WORKERS="2", LABKIT_VM__LIBVIRT_DRIVER="qemu"))
    assert out.returncode == 0, out.stdout + out.stderr
    machines = {line.split(",")[1] for line in out.stdout.splitlines() if ",state," in line}
    assert machines == {"ubuntu", "worker-1", "worker-2"}


def test_vagrant_reports_virtualbox_missing_on_this_machine():
    out = vagrant("validate")
    assert out.returncode != 0
    assert "Vagrant could not detect VirtualBox" in out.stdout + out.stderr


def test_bad_settings_stop_vagrant_with_labkits_one_line():
    out = vagrant("status", env=clean_env(LABKIT_VM__MEMORY="1024"))
    assert out.returncode == 1
    assert out.stderr.strip() == ("labkit: vm.memory = 1024 MB is too little: kubeadm needs at least 1700 MB "
                                  "(from LABKIT_VM__MEMORY). Fix: set LABKIT_VM__MEMORY=2048, or vm.memory: 2048 "
                                  "in settings.local.yaml")


# --- the two loaders agree ----------------------------------------------------------------------

def ruby_load(root: Path, env: dict, host_cpu: str | None = None) -> tuple[int, str]:
    need_binary("ruby")
    out = subprocess.run(["ruby", str(REPO / "vagrant" / "settings.rb"), str(root)] + ([host_cpu] if host_cpu else []),
                         env=env,
                         capture_output=True, text=True, timeout=60)
    return out.returncode, (out.stdout if out.returncode == 0 else out.stderr).strip()


def python_load(root: Path, env: dict, host_cpu: str | None = None) -> tuple[int, str]:
    try:
        return 0, settings.load(root, env, host_cpu).data
    except settings.SettingsError as exc:
        return 1, exc.line()


@pytest.fixture
def project(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    return tmp_path


CASES = [
    ({}, None),
    ({"LABKIT_PROVIDER": "libvirt", "LABKIT_VM__MEMORY": "4096", "LABKIT_NODES__0__IP": "192.168.57.3"}, None),
    ({"LABKIT_VERSIONS__PAUSE": "3.2", "LABKIT_PROVISION": "[base]"}, None),
    ({}, {"vm": {"cpus": 4}, "nodes": [{"name": "m", "ip": "192.168.56.10", "role": "master"},
                                       {"name": "w", "ip": "192.168.56.11", "role": "worker"}]}),
    ({"LABKIT_VM__CPUS": "1"}, None),
    ({"LABKIT_VM__CPUS": "two"}, None),
    ({"LABKIT_VM__MEMORY": "1024"}, None),
    ({"LABKIT_PROVIDER": "vmware"}, None),
    ({"LABKIT_NODES__0__IP": "10.0.0.5"}, None),
    ({"LABKIT_NODES__0__IP": "192.168.56.255"}, None),
    ({"LABKIT_NODES__0__IP": "fe80::1"}, None),
    ({"LABKIT_NODES__1__IP": "192.168.56.11"}, None),
    ({"LABKIT_NOPE": "1"}, None),
    ({"LABKIT_LIMITS__MIN_CPUS": "1"}, None),
    ({"LABKIT_PROVISION": "[base, nothing]"}, None),
    ({}, {"vm": {"memroy": 1}}),
    ({}, {"vm": {"cpus": "four"}}),
    ({}, {"nodes": []}),
    ({}, {"nodes": [{"name": "a", "ip": "192.168.56.10", "role": "worker"}]}),
    ({}, {"nodes": [{"name": "a", "ip": "192.168.56.10", "role": "master"},
                    {"name": "b", "ip": "192.168.56.10", "role": "worker"}]}),
    ({"LABKIT_VM__CPUS": "3"}, {"vm": {"cpus": 1}}),  # the environment wins over a bad local value
    ({"LABKIT_VM": "{cpus: 4}"}, None),  # a whole section from the environment is refused
    ({"LABKIT_BUNDLE": "{dir: x}"}, None),
    ({}, b"\xff\xfe" + "vm:\n  cpus: 4\n".encode("utf-16-le")),  # Notepad's "Unicode": UTF-16 with a BOM
    # workers: generated after the listed nodes, on the next addresses, first free names
    ({"LABKIT_WORKERS": "2"}, None),
    ({"LABKIT_WORKERS": "1", "LABKIT_MASTER_RUNS_PODS": "true"}, None),
    ({"LABKIT_WORKERS": "2"}, {"nodes": [{"name": "m", "ip": "192.168.56.10", "role": "master"},
                                         {"name": "worker-1", "ip": "192.168.56.30", "role": "worker"}]}),
    ({"LABKIT_WORKERS": "-1"}, None),
    ({"LABKIT_WORKERS": "two"}, None),
    ({"LABKIT_WORKERS": "true"}, None),
    ({"LABKIT_MASTER_RUNS_PODS": "1"}, None),
    ({"LABKIT_WORKERS": "3", "LABKIT_NODES__0__IP": "192.168.63.253"}, None),  # past the end of the range
    ({"LABKIT_WORKERS": "250"}, None),  # would reach 192.168.56.255
    ({}, {"workers": 1, "nodes": [{"name": "m", "ip": "192.168.56.10", "role": "master"},
                                  {"name": "w", "ip": "192.168.56.10", "role": "worker"}]}),
    # dates and repeated keys: one line naming them in both (Ruby raised Psych::DisallowedClass, Python a TypeError)
    ({}, b"vm:\n  memory: 2024-01-01\n"),
    ({}, b"versions:\n  pause: 2024-01-01 10:00:00\n"),
    ({}, b"versions:\n  pause: '2024-01-01'\n"),
    ({}, b"nodes:\n  - name: m\n    ip: 192.168.56.10\n    role: master\n    ip: 192.168.56.11\n"),
    ({}, b"vm:\n  cpus: 4\nworkers: 1\nvm:\n  memory: 4096\n"),
    ({"LABKIT_VM__MEMORY": "2024-01-01"}, None),
    ({"LABKIT_VERSIONS__PAUSE": "2024-01-01"}, None),
    # the guest architecture, named rather than read from this (x86-64) machine
    ({"LABKIT_ARCH": "arm64"}, None),
    ({"LABKIT_ARCH": "arm64", "LABKIT_PROVIDER": "libvirt", "LABKIT_ARM64_BOXES__LIBVIRT": "labkit/debian-arm64-test"}, None),
    ({"LABKIT_ARCH": "i386"}, None),
    ({"LABKIT_ARCH": "arm64", "LABKIT_ARM64_BOXES__VIRTUALBOX": ""}, None),
    ({}, {"arch": "amd64", "arm64_boxes": {"virtualbox": "x/y"}}),
]


@pytest.mark.parametrize("env, local", CASES)
def test_ruby_and_python_loaders_agree(project, env, local):
    if isinstance(local, bytes):
        (project / "settings.local.yaml").write_bytes(local)
    elif local is not None:
        (project / "settings.local.yaml").write_text(yaml.safe_dump(local))
    full_env = clean_env(**env)
    ruby_code, ruby_out = ruby_load(project, full_env)
    py_code, py_out = python_load(project, full_env)
    assert ruby_code == py_code
    if py_code == 0:
        assert json.loads(ruby_out) == py_out
    else:
        assert ruby_out == py_out


# `arch: auto` reads the host's CPU: Python's platform.machine() and Ruby's RbConfig host_cpu, handed the
# same name here (on this x86-64 machine, the CASES above resolve both to amd64).
HOST_CPUS = [
    ("arm64", {}),                        # macOS on Apple Silicon
    ("aarch64", {"LABKIT_PROVIDER": "libvirt"}),  # Linux on arm64
    ("AMD64", {}),                        # Windows
    ("x86_64", {"LABKIT_ARCH": "arm64"}),  # named beats auto
    ("ppc64le", {}),                      # no guest for it
    ("ppc64le", {"LABKIT_ARCH": "amd64"}),
]


@pytest.mark.parametrize("host_cpu, env", HOST_CPUS)
def test_both_loaders_resolve_the_host_architecture_alike(project, host_cpu, env):
    full_env = clean_env(**env)
    ruby_code, ruby_out = ruby_load(project, full_env, host_cpu)
    py_code, py_out = python_load(project, full_env, host_cpu)
    assert ruby_code == py_code
    if py_code == 0:
        assert json.loads(ruby_out) == py_out
        assert py_out["arch"] == env.get("LABKIT_ARCH", {"arm64": "arm64", "aarch64": "arm64"}.get(host_cpu, "amd64"))
    else:
        assert ruby_out == py_out == ("labkit: arch auto: this computer's CPU 'ppc64le' has no guest in the lab "
                                      "(from settings.yaml). Fix: use an x86-64 or an Apple Silicon (arm64) laptop")


def test_vagrantfile_validates_for_an_arm64_guest():
    """The real Vagrantfile validates for an arm64 guest (the box it names: test_vagrantfile_virtualbox.py)."""
    out = vagrant("validate", env=clean_env(LABKIT_PROVIDER="libvirt", LABKIT_ARCH="arm64",
                                            LABKIT_VM__LIBVIRT_DRIVER="qemu"))
    assert out.returncode == 0, out.stdout + out.stderr
