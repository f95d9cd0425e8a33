"""T1: box_installed reads the box tree the real Vagrant here writes (Vagrant 2.3.4: no architecture
level); the 2.4 per-architecture tree is covered in tests/t0/test_vagrant_traps.py.

The box is added to a Vagrant home of the test's own, so the test neither depends on nor disturbs the
boxes of the machine (T2 adds and removes the test box in the real one)."""
from __future__ import annotations

import os
import subprocess

from labkit.vagrant import box_installed
from tests.support.env import need, need_binary
from tests.support.testbundle import BOX_FILE, BOX_NAME


def test_a_box_real_vagrant_added_counts_as_installed(tmp_path):
    vagrant = need_binary("vagrant")
    need(BOX_FILE.is_file(), f"no test box at {BOX_FILE} (run scripts/build-test-box)")
    env = {**os.environ, "VAGRANT_HOME": str(tmp_path)}
    assert not box_installed(BOX_NAME, "libvirt", {"VAGRANT_HOME": str(tmp_path)})
    added = subprocess.run([vagrant, "box", "add", "--name", BOX_NAME, str(BOX_FILE)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert added.returncode == 0, added.stdout + added.stderr
    assert box_installed(BOX_NAME, "libvirt", {"VAGRANT_HOME": str(tmp_path)})
    assert not box_installed(BOX_NAME, "virtualbox", {"VAGRANT_HOME": str(tmp_path)})
