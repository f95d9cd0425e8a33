"""The steps of vm.up, vm.provision, vm.halt, vm.destroy and vm.snapshot, one file each (labkit.steps.Step, as cluster/actions/).

The plans below are the only place that says which steps a task runs and in which order; --dry-run prints the
same list. A student's section.start brings its VM up with `up_plan` too (labkit/student/actions/).
"""
from __future__ import annotations

from typing import Optional

from labkit.vm import PARALLEL_PROVIDERS
from labkit.vm.actions.box import AddBox
from labkit.vm.actions.destroy import DestroyNode
from labkit.vm.actions.found import Found
from labkit.vm.actions.halt import HaltNode
from labkit.vm.actions.preflight import CheckPrerequisites
from labkit.vm.actions.provision import ProvisionNode
from labkit.vm.actions.share_fallback import CopyBundleIfUnshared
from labkit.vm.actions.snapshot import CheckSnapshots, DeleteSnapshot, RestoreSnapshot, SaveSnapshot
from labkit.vm.actions.up import UpInParallel, UpNode


def up_plan(s, nodes, provision: Optional[list] = None) -> list:
    """Checks, the box, then each node up (one parallel `vagrant up` where the provider allows it).

    provision: None is Vagrant's own (every provision/ step when a VM is created); a list names the only steps
    a new VM gets (a student's VM stops before `kubernetes`), and an existing one is started without any."""
    found = Found()
    plan = [CheckPrerequisites(nodes, found), AddBox(s, nodes, found)]
    if s.provider in PARALLEL_PROVIDERS and len(nodes) > 1:
        return plan + [UpInParallel(s, nodes, found, provision)]
    for n in nodes:
        plan.append(UpNode(s, n, found, provision))
        if s.provider == "virtualbox":
            plan.append(CopyBundleIfUnshared(n, found, provision))
    return plan


def provision_plan(s, nodes, step=None) -> list:
    return [ProvisionNode(n, step) for n in nodes]


def halt_plan(s, nodes) -> list:
    return [HaltNode(n) for n in nodes]


def destroy_plan(s, nodes) -> list:
    return [DestroyNode(n) for n in nodes]


def snapshot_plan(s, nodes, save: Optional[str] = None, restore: Optional[str] = None,
                  delete: Optional[str] = None) -> list:
    """Every node checked before any is changed (a cluster is restored whole or not at all), then each node."""
    found = Found()
    plan: list = [CheckSnapshots(nodes, found, restore)]
    for n in nodes:
        if save:
            plan.append(SaveSnapshot(n, save, found))
        elif restore:
            plan.append(RestoreSnapshot(n, restore))
        elif delete:
            plan.append(DeleteSnapshot(n, delete, found))
    return plan
