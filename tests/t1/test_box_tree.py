"""T1: box_installed reads the box tree the real Vagrant here wrote (Vagrant 2.3.4: no architecture
level); the 2.4 per-architecture tree is covered in tests/t0/test_vagrant_traps.py."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from labkit.vagrant import box_installed
from tests.conftest import need, need_binary
from tests.t2.testbundle import BOX_NAME


def test_a_box_real_vagrant_added_counts_as_installed():
    vagrant = need_binary("vagrant")
    listed = subprocess.run([vagrant, "box", "list", "--machine-readable"], capture_output=True, text=True, timeout=120)
    need(f",box-name,{BOX_NAME}" in listed.stdout, f"Vagrant has no {BOX_NAME} box (scripts/host-setup adds it)")
    home = Path(os.environ.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")
    assert box_installed(BOX_NAME, "libvirt", {"VAGRANT_HOME": str(home)})
    assert not box_installed(BOX_NAME, "virtualbox", {"VAGRANT_HOME": str(home)})
