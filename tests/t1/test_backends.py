"""One contract, every backend (after pytest-testinfra's test/test_backends.py): exit code, stdout/stderr,
stdin, timeout, and an unreachable target, run the same way against each place a command can run.

    local   this machine
    netns   a real network namespace (ip netns)
    node    get_backend("node:ubuntu") with its SSH facts where Vagrant's would be cached, to a real sshd
    pod     kubectl exec through the local backend; kubectl is a stand-in that runs what follows `--`
            (no Kubernetes 1.15 can run here), so what is tested is the argv and stdin the Pod backend sends
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from labkit import settings as settings_mod
from labkit.backends import TIMEOUT_EXIT, Local, Pod, get_backend
from tests.support.env import REPO, free_port, need_binary, need_root, stop_process
from tests.support.sshd import start_sshd

pytestmark = pytest.mark.t1
NETNS = "labkit-contract"
KUBECTL = '#!/bin/sh\n# kubectl exec [-n NS] POD [-i] -- ARGV...: run ARGV here\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n'


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    proc, facts = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield facts
    stop_process(proc)


def project_with_facts(root, facts) -> settings_mod.Settings:
    """A project whose cached SSH facts for its node point at `facts` (what node_facts keeps from Vagrant)."""
    root.mkdir()
    shutil.copy(REPO / "settings.yaml", root / "settings.yaml")
    shutil.copytree(REPO / "provision", root / "provision")
    (root / ".labkit").mkdir()
    (root / ".labkit" / "ubuntu.ssh.json").write_text(json.dumps({k: facts[k] for k in ("host", "port", "user", "key_file")}))
    return settings_mod.load(root, {})


@pytest.fixture(scope="module")
def netns():
    need_root()
    need_binary("ip")
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    yield NETNS
    subprocess.run(["ip", "netns", "delete", NETNS], check=False)


@pytest.fixture(params=["local", "netns", "node", "pod"])
def backend(request, tmp_path, sshd):
    if request.param == "local":
        made = get_backend("local")
    elif request.param == "netns":
        made = get_backend(f"netns:{request.getfixturevalue('netns')}")
    elif request.param == "node":
        made = get_backend("node:ubuntu", project_with_facts(tmp_path / "project", sshd))
    else:
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "kubectl").write_text(KUBECTL)
        (tmp_path / "bin" / "kubectl").chmod(0o755)
        made = Pod(Local(prefix=["env", f"PATH={tmp_path / 'bin'}:/usr/bin:/bin"], name="node"), "client")
    yield made
    if hasattr(made, "close"):
        made.close()


def test_exit_code_and_both_streams(backend):
    res = backend.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=20)
    assert (res.exit_code, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert not res.ok and backend.run(["true"], timeout=20).ok


def test_stdin_reaches_the_command(backend):
    text = "kubeadm: ünïcode and\nlines\n"
    res = backend.run(["cat"], timeout=20, stdin=text.encode())
    assert res.ok and res.stdout == text


def test_a_command_over_its_timeout_is_exit_124(backend):
    res = backend.run(["sleep", "10"], timeout=1)
    assert res.exit_code == TIMEOUT_EXIT and res.seconds < 6
    assert backend.run(["echo", "after"], timeout=20).stdout == "after\n"  # the backend is still usable


def test_a_missing_command_is_a_result_not_an_exception(backend):
    res = backend.run(["labkit-no-such-command"], timeout=20)
    assert res.exit_code != 0 and "labkit-no-such-command" in res.stderr


@pytest.mark.parametrize("kind", ["netns", "node", "pod"])
def test_an_unreachable_target_is_one_line_not_an_exception(kind, tmp_path, sshd):
    if kind == "netns":
        res = get_backend("netns:labkit-no-such-netns").run(["true"], timeout=20)
        assert res.exit_code != 0 and "labkit-no-such-netns" in res.stderr
        return
    # the node's cached facts name a port nothing listens on, and there is no VM for Vagrant to ask about
    node = get_backend("node:ubuntu", project_with_facts(tmp_path / "project", {**sshd, "port": free_port()}))
    target = node if kind == "node" else Pod(node, "client")
    res = target.run(["true"], timeout=20)
    assert res.exit_code == 255
    assert res.stderr.startswith("ssh to ubuntu failed: cannot reach ubuntu over SSH (")
    assert res.stderr.endswith("Fix: start the VM: invoke vm.up") and "\n" not in res.stderr
