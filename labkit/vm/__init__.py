"""The lab's VMs through Vagrant: what vm.up/halt/destroy/snapshot and a student's section.start do to them.

The steps are in labkit/vm/actions/ (one file each, labkit.steps.Step); this module holds the facts they share.
"""
from __future__ import annotations

import re
from pathlib import Path

from labkit import vagrant

# Providers registered with `parallel: true`: vagrant-libvirt 0.11.2 (lib/vagrant-libvirt/plugin.rb); Vagrant 2.3.4's
# own VirtualBox provider is not (plugins/providers/virtualbox/plugin.rb), so there vm.up goes node by node.
PARALLEL_PROVIDERS = {"libvirt"}
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def forget_ssh(s, node: str) -> None:
    """Ports and addresses change across boots: drop the cached ssh facts."""
    from labkit.backends import ssh_cache_file

    ssh_cache_file(s, node).unlink(missing_ok=True)


def created(s, node: str) -> bool:
    """Does Vagrant hold a VM for this node? Its machine id file says so without a 1.5 s `vagrant status`."""
    return vagrant.machine_id(s.root, node) is not None


def bundle_copied(s, node: str) -> Path:
    """The marker of a VirtualBox node whose share did not mount: the Vagrantfile's bundle_copied?
    then gives it the rsync copy libvirt nodes have."""
    return s.state_dir / "bundle-rsync" / node


def copies_bundle(s, node: str) -> bool:
    """Is the bundle in this node a copy (rsync), which `vagrant provision` alone does not refresh?"""
    return s.provider == "libvirt" or bundle_copied(s, node).exists()
