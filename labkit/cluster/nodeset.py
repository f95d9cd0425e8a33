"""The nodes a lab was built with against this shell's settings, and what nodes must not share.

`LABKIT_WORKERS` lives in one shell: a later command without it sees a one-node lab and would halt,
snapshot or re-taint the master alone. The record of what was built is kept where it cannot go stale:
  * the VMs: Vagrant's own `.vagrant/machines/<name>/<provider>/id`, written by `vagrant up` and removed by
    `vagrant destroy` (labkit.vagrant.machine_id reads the same file);
  * the cluster: the Nodes the API server lists.
A VM or Node that settings do not name stops the task with one line naming the setting that brings it back.
More nodes in settings than built is not a problem: vm.up creates them and cluster.init joins them.

Identities: Weave Net derives its peer name from the machine's identity (weaveworks/weave#1866: from
product_uuid; 2.x also reads /etc/machine-id), so two VMs sharing one get one peer name and collide
(weaveworks/weave#2606, #3438: "peer names collision"); kubernetes/kubeadm#31 ("The product_uuid and the
hostname should be unique across nodes") became the install guide's "Verify the MAC address and
product_uuid are unique for every node".
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from labkit.errors import LabkitError


def created(settings, env: Optional[Mapping[str, str]] = None) -> list[str]:
    """The names of this checkout's VMs that Vagrant created and has not destroyed."""
    from labkit.vagrant import created_machines

    return created_machines(settings.root, None if env is None else dict(env))


def restore_fix(settings, missing: list[str], env: Optional[Mapping[str, str]] = None) -> str:
    """The setting under which `missing` are nodes again: the smallest LABKIT_WORKERS that names them all."""
    from labkit import settings as settings_mod

    env = dict(os.environ if env is None else env)
    start = settings.data["workers"]
    for count in range(start + 1, start + len(missing) + 1):
        try:
            names = {n.name for n in settings_mod.load(settings.root, {**env, "LABKIT_WORKERS": str(count)}).nodes}
        except LabkitError:
            break
        if set(missing) <= names:
            return (f"set LABKIT_WORKERS={count} in this shell as when the lab was built (or workers: {count} in "
                    f"settings.local.yaml); to shrink the lab instead, LABKIT_WORKERS={count} invoke vm.destroy "
                    f"--node {missing[-1]}")
    return ("give settings the nodes the lab was built with again (settings.local.yaml, LABKIT_* variables), "
            "or remove the others with them set: invoke vm.destroy --node NAME")


def _listing(settings) -> str:
    names = [n.name for n in settings.nodes]
    return f"{len(names)} node{'s' if len(names) != 1 else ''} ({', '.join(names)})"


def vm_problem(settings, vms: list[str], env=None) -> Optional[LabkitError]:
    """VMs of this lab that settings do not name (LABKIT_WORKERS forgotten), as one line with the fix."""
    extra = [v for v in vms if v not in {n.name for n in settings.nodes}]
    if not extra:
        return None
    return LabkitError(f"this lab has the VM{'s' if len(extra) > 1 else ''} {', '.join(extra)}, which settings here "
                       f"do not list (they name {_listing(settings)})", restore_fix(settings, extra, env))


def api_problem(settings, node_names: list[str], env=None) -> Optional[LabkitError]:
    """Nodes the API server lists that settings do not name, as one line with the fix."""
    extra = sorted(n for n in node_names if n not in {x.name for x in settings.nodes})
    if not extra:
        return None
    return LabkitError(f"the cluster has the node{'s' if len(extra) > 1 else ''} {', '.join(extra)}, which settings "
                       f"here do not list (they name {_listing(settings)})", restore_fix(settings, extra, env))


def identity_problem(facts: Mapping[str, object]) -> Optional[LabkitError]:
    """Two nodes with one machine-id or one product_uuid (facts: node name → labkit.cluster.node.Facts)."""
    for field, what, fix in (
            ("product_uuid", "product_uuid (a cloned VM keeps its source's)",
             "recreate the later one: invoke vm.destroy --node {b}, then invoke vm.up and invoke cluster.join"),
            ("machine_id", "machine-id (Weave Net would give both one peer name)",
             "invoke cluster.reset, then invoke vm.provision --node {b} --step base (it gives a VM outside a "
             "cluster its own machine-id), then invoke cluster.init")):
        seen: dict[str, str] = {}
        for name, f in facts.items():
            value = getattr(f, field)
            if not value:
                continue
            if value in seen:
                return LabkitError(f"{seen[value]} and {name} have the same {what}: {value}", fix.format(b=name))
            seen[value] = name
    return None


def every_node(settings) -> list:
    """Every node in settings, for a vm task acting on all of them (the one call vm tasks make): stops first
    if VMs of this lab exist that settings do not name (vm.halt or vm.snapshot would leave them behind)."""
    problem = vm_problem(settings, created(settings))
    if problem:
        raise problem
    return settings.nodes
