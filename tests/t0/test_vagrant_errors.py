"""T0: Vagrant's failures become one line with a fix; libvirt domain names are per checkout."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from labkit import libvirt
from labkit.errors import LabkitError
from labkit.vagrant import explain

# vagrant-libvirt 0.11.2, locales/en.yml domain_name_exists, as `vagrant up` prints it (seen in CI)
NAME_TAKEN = """Bringing machine 'ubuntu' up with 'libvirt' provider...
Name `main_ubuntu` of domain about to create is already taken. Please try to run
`vagrant up` command again.
"""


def test_a_leftover_libvirt_domain_points_at_vm_destroy():
    line = explain(NAME_TAKEN, "up").line()
    assert line == ("labkit: vagrant up failed: libvirt still has this VM from a run whose .vagrant state is gone. "
                    "Fix: run invoke vm.destroy (it removes that leftover VM), then invoke vm.up")


def test_an_unknown_failure_quotes_vagrants_last_line():
    line = explain("Bringing machine 'ubuntu' up...\nSomething new went wrong\n\n", "up").line()
    assert line.startswith("labkit: vagrant up failed: Something new went wrong. Fix: ")


def test_domain_names_differ_for_copies_in_folders_of_the_same_name(tmp_path):
    a, b = tmp_path / "one" / "main", tmp_path / "two" / "main"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    name_a = libvirt.domain_name(a, "ubuntu")
    assert name_a != libvirt.domain_name(b, "ubuntu")
    assert name_a == libvirt.domain_name(Path(str(a) + "/."), "ubuntu")  # same folder, same name
    assert name_a.startswith("labkit-") and name_a.endswith("-ubuntu")
    # vagrant-libvirt drops anything outside [-a-z0-9_.]: the name must survive that unchanged
    assert all(ch.isalnum() or ch in "-_." for ch in name_a) and name_a.islower()


# Vagrant 2.3.4, templates/locales/en.yml rsync_not_found: `vagrant up` with the libvirt provider (whose
# bundle folder is an rsync synced folder) on a host without rsync.
RSYNC_MISSING = """Bringing machine 'ubuntu' up with 'libvirt' provider...
"rsync" could not be found on your PATH. Make sure that rsync
is properly installed on your system and available on the PATH.
"""

# Vagrant 2.3.4, en.yml box_auto_adding, then the detail lines of handle_box.rb, then
# box_add_short_not_found: plain `vagrant up` offline without the box.
BOX_MISSING = """Bringing machine 'ubuntu' up with 'virtualbox' provider...
==> ubuntu: Box 'ubuntu/xenial64' could not be found. Attempting to find and install...
    ubuntu: Box Provider: virtualbox
    ubuntu: Box Version: >= 0
The box 'ubuntu/xenial64' could not be found or
could not be accessed in the remote catalog. If this is a private
box on HashiCorp's Vagrant Cloud, please verify you're logged in via
`vagrant login`. Also, please double-check the name. The expanded
URL and error message are shown below:

URL: ["https://vagrantcloud.com/ubuntu/xenial64"]
Error: Could not resolve host: vagrantcloud.com
"""


def test_could_not_be_found_tells_missing_rsync_from_a_missing_box():
    assert explain(RSYNC_MISSING, "up").line() == (
        "labkit: vagrant up failed: rsync is not installed (Vagrant copies the bundle into the VM with it). "
        "Fix: install rsync with your system's package manager (Debian/Ubuntu: sudo apt-get install rsync)")
    assert explain(BOX_MISSING, "up").message == "vagrant up failed: the Vagrant box is not installed"


def test_a_libvirtd_that_does_not_answer_is_one_line(tmp_path, monkeypatch):
    # A real process that outlives the timeout stands in for a stuck libvirtd behind virsh.
    (tmp_path / "virsh").write_text("#!/bin/sh\nexec sleep 30\n")
    (tmp_path / "virsh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(libvirt, "TIMEOUT", 0.5)
    with pytest.raises(LabkitError) as info:
        libvirt.exists("labkit-0123456789-ubuntu")
    assert info.value.line().startswith("labkit: virsh dominfo did not answer within 0.5 s")
