"""The same line from every task and check when the VM is not there: the real CLI and the real Vagrant
(libvirt provider, an empty Vagrant state directory, so Vagrant itself says the VM is not created)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.env import REPO, need_binary
from tests.support.vagrantfile import NO_MACHINES

pytestmark = pytest.mark.t1
LINE = "labkit: cannot reach ubuntu over SSH (the VM is not created). Fix: start the VM: invoke vm.up"


def run(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env.update(VAGRANT_DOTFILE_PATH=NO_MACHINES, LABKIT_PROVIDER="libvirt", LABKIT_WORKERS="1")
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.parametrize("task", ["cluster.init", "cluster.join", "app.build"])
def test_tasks_that_need_the_node_say_the_same_line(task):
    need_binary("vagrant")
    out = run(task)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == LINE


def test_verify_says_it_in_its_ssh_check():
    need_binary("vagrant")
    out = run("verify", "--section", "3")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    # verify wraps its causes at the terminal's width: compare the words, not the line breaks
    words = " ".join(out.stdout.split())
    assert "cause: the laptop cannot run commands on node ubuntu over SSH (ssh to ubuntu failed: " \
           "cannot reach ubuntu over SSH (the VM is not created)." in words
