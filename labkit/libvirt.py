"""libvirt domains Vagrant no longer knows about (the libvirt provider only, so Linux only).

Vagrant finds its VM through the id in `.vagrant/`. When that state is gone (a fresh clone, a deleted
`.vagrant`, an aborted run) the domain stays defined in libvirt under the same name, and the next
`vagrant up` stops with "Name ... of domain about to create is already taken". `vm.destroy` uses
this module to remove such a leftover, but only one with exactly this checkout's name.
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

URI = "qemu:///system"  # vagrant-libvirt's default, which the Vagrantfile keeps


def domain_name(root: Path, node: str) -> str:
    """The domain name the Vagrantfile gives `node`: LIBVIRT_PREFIX there, the same rule here."""
    digest = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:10]
    return f"labkit-{digest}-{node}"


TIMEOUT = 120  # seconds; a libvirtd that hangs must not hang vm.destroy


def _virsh(*args: str) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)
        from labkit.proc import text  # a localized libvirt message: never a UnicodeDecodeError

        return subprocess.CompletedProcess(done.args, done.returncode, text(done.stdout), text(done.stderr))
    except subprocess.TimeoutExpired:
        from labkit.errors import LabkitError

        raise LabkitError(f"virsh {args[0]} did not answer within {TIMEOUT} s: libvirtd is stuck",
                          "restart it (sudo systemctl restart libvirtd), then run the command again") from None


def exists(name: str) -> bool:
    try:
        return _virsh("dominfo", name).returncode == 0
    except FileNotFoundError:  # no virsh, so no libvirt to leave anything in
        return False


def remove(name: str) -> None:
    """Stop the domain if it runs, then undefine it with its disks and snapshot metadata."""
    _virsh("destroy", name)  # fails harmlessly when it is not running
    done = _virsh("undefine", name, "--remove-all-storage", "--snapshots-metadata")
    if done.returncode != 0 and exists(name):
        from labkit.errors import LabkitError

        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabkitError(f"could not remove the leftover libvirt VM {name}: {reason}",
                          f"remove it by hand: virsh -c {URI} undefine {name} --remove-all-storage")
