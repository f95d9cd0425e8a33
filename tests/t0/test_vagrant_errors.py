"""T0: Vagrant's failures become one line with a fix; libvirt domain names are per checkout."""
from __future__ import annotations

from pathlib import Path

from labkit import libvirt
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
