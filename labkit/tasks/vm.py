"""vm.*: the lab's virtual machines, through Vagrant (create → provision → halt → destroy, snapshots)."""
from __future__ import annotations

import re
from pathlib import Path

from labkit import ui
from labkit.errors import LabkitError
from labkit.tasks._common import labtask, settings, vagrant_for

NODE_HELP = "only this node (default: every node in settings)"
# Providers registered with `parallel: true`: vagrant-libvirt 0.11.2 (lib/vagrant-libvirt/plugin.rb); Vagrant 2.3.4's
# own VirtualBox provider is not (plugins/providers/virtualbox/plugin.rb), so there vm.up goes node by node.
PARALLEL_PROVIDERS = {"libvirt"}
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _targets(s, node):
    from labkit.cluster import nodeset

    return [s.node(node)] if node else nodeset.every_node(s)


def _forget_ssh(s, node: str) -> None:
    """Ports and addresses change across boots: drop the cached ssh facts."""
    from labkit.backends import ssh_cache_file

    ssh_cache_file(s, node).unlink(missing_ok=True)


def bundle_copied(s, node: str) -> Path:
    """The marker of a VirtualBox node whose share did not mount: the Vagrantfile's bundle_copied?
    then gives it the rsync copy libvirt nodes have."""
    return s.state_dir / "bundle-rsync" / node


def copies_bundle(s, node: str) -> bool:
    """Is the bundle in this node a copy (rsync), which `vagrant provision` alone does not refresh?"""
    return s.provider == "libvirt" or bundle_copied(s, node).exists()


def _in_background(fn, *args):
    """fn(*args) in a daemon thread, as a Future. Unlike a pool's threads, nothing joins it (not even
    Python's exit), so an answer we turn out not to need costs no time."""
    import threading
    from concurrent.futures import Future

    future = Future()

    def work():
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, daemon=True).start()
    return future


def preflight(s, vg, nodes) -> dict:
    """Doctor's checks and `vagrant status`, concurrently. Returns each node's state.

    Nothing to start (all running) → no check can block, and none is waited for. Otherwise the
    first failed check stops us with its fix, before Vagrant can fail with something less clear.
    """
    from labkit import doctor

    with ui.step("Checking prerequisites") as st:
        probe = doctor.Probe()
        checks = [_in_background(doctor.run_check, check, s, probe) for check in doctor.CHECKS]
        states = {n.name: _in_background(vg.status, n.name) for n in nodes}
        try:
            found = {name: f.result() for name, f in states.items()}
        except LabkitError as exc:
            found, status_error = None, exc
        if found and all(state == "running" for state in found.values()):
            return found
        failed = [c for c in (f.result() for f in checks) if c.status == doctor.FAIL]
        if failed:
            for c in failed:
                st.log(f"{c.name}: {c.detail}")
            more = f" ({len(failed) - 1} more problem(s) above; invoke doctor shows all)" if len(failed) > 1 else ""
            raise LabkitError(failed[0].detail + more, failed[0].fix)
        if found is None:
            raise status_error
        return found


def ensure_box(s, vg) -> None:
    """Add the box from the bundle (hash-checked) if Vagrant doesn't have it: no download, ever."""
    from labkit import vagrant
    from labkit.bundle import hashing, lock

    if vagrant.box_installed(s.box, s.provider):
        return
    art = lock.load(s.lock_file).box_for(s.box, s.provider)
    if art is None:
        raise LabkitError(f"the box {s.box} ({s.provider}) is not installed and {s.lock_file.name} has no file for it",
                          "add it with vagrant box add, or pick a box the lock carries")
    with ui.step(f"Adding box {s.box} from the bundle") as st:
        bad = hashing.problem(art, s.bundle_dir)
        if bad:
            raise LabkitError(f"bundle artifact {art.name} ({art.path}) is {bad}",
                              f"run invoke bundle.fetch --only {art.name}")
        vg.stream(st, "box", "add", "--name", s.box, "--provider", s.provider, "--force", str(art.file(s.bundle_dir)))


@labtask(help={"node": NODE_HELP})
def up(c, node=None):
    """Create and start the lab VM(s) and provision them offline from the bundle. Safe to re-run."""
    s = settings(c)
    vg = vagrant_for(s)
    nodes = _targets(s, node)
    states = preflight(s, vg, nodes)
    if all(states[n.name] == "running" for n in nodes):
        for n in nodes:
            with ui.step(f"Starting VM {n.name}") as st:
                st.skip("already running")
        return
    ensure_box(s, vg)
    s.bundle_dir.mkdir(parents=True, exist_ok=True)
    todo = [n for n in nodes if states[n.name] != "running"]
    if s.provider in PARALLEL_PROVIDERS and len(todo) > 1:
        _up_in_parallel(s, vg, nodes, states)
        return
    for n in nodes:
        verb = "Creating" if states[n.name] == "not_created" else "Starting"
        with ui.step(f"{verb} VM {n.name} ({s.provider}, {s.box}, {n.ip})") as st:
            if states[n.name] == "running":
                st.skip("already running")
                continue
            _forget_ssh(s, n.name)
            _up_one(s, vg, n, st)


def _up_one(s, vg, n, st) -> None:
    """`vagrant up` of one node. On VirtualBox, a bundle share that does not mount (the box's Guest
    Additions do not fit this VirtualBox: the 2021 xenial box has 5.x ones) turns into an rsync copy."""
    try:
        vg.stream(st, "up", n.name, f"--provider={s.provider}")
    except LabkitError:
        if s.provider != "virtualbox" or "vboxsf" not in vg.last_output:
            raise
        st.log("the VirtualBox shared folder did not mount (the box's Guest Additions do not fit this VirtualBox): "
               "copying the bundle into the VM with rsync instead")
        marker = bundle_copied(s, n.name)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        vg.stream(st, "rsync", n.name)
        vg.stream(st, "provision", n.name)


def _up_in_parallel(s, vg, nodes, states) -> None:
    """One `vagrant up` for every node: Vagrant brings them up at once where the provider allows it
    (vagrant-libvirt does, VirtualBox does not). Vagrant prefixes each line with the node's name."""
    todo = [n for n in nodes if states[n.name] != "running"]
    for n in nodes:
        if states[n.name] == "running":
            with ui.step(f"Starting VM {n.name}") as st:
                st.skip("already running")
    names = ", ".join(n.name for n in todo)
    with ui.step(f"Creating/starting VMs {names} in parallel ({s.provider}, {s.box})") as st:
        for n in todo:
            _forget_ssh(s, n.name)
        vg.stream(st, "up", "--parallel", f"--provider={s.provider}", *(n.name for n in todo))
        for n in todo:
            st.log(f"{n.name}: {vg.status(n.name)} on {n.ip}")


@labtask(help={"node": NODE_HELP, "step": "run only this provision/ script (e.g. base)"})
def provision(c, node=None, step=None):
    """Run the provision/ scripts again on running VM(s); they skip what is already done."""
    s = settings(c)
    vg = vagrant_for(s)
    if step and step not in s.data["provision"]:
        raise LabkitError(f"'{step}' is not a provision step", "use one of: " + ", ".join(s.data["provision"]))
    for n in _targets(s, node):
        with ui.step(f"Provisioning {n.name}" + (f" ({step})" if step else "")) as st:
            if vg.status(n.name) != "running":
                raise LabkitError(f"{n.name} is not running", "run invoke vm.up first")
            if copies_bundle(s, n.name):  # `vagrant provision` does not sync folders (vagrant-libvirt neither)
                vg.stream(st, "rsync", n.name)
            vg.stream(st, "provision", n.name, *(["--provision-with", step] if step else []))


@labtask(help={"node": NODE_HELP})
def halt(c, node=None):
    """Shut the VM(s) down gracefully; vm.up starts them again where they were."""
    s = settings(c)
    vg = vagrant_for(s)
    for n in _targets(s, node):
        with ui.step(f"Stopping VM {n.name}") as st:
            state = vg.status(n.name)
            if state == "not_created":
                st.skip("not created")
            elif state != "running":
                st.skip(f"already stopped ({state})")
            else:
                _forget_ssh(s, n.name)
                vg.stream(st, "halt", n.name)


@labtask(help={"node": NODE_HELP})
def destroy(c, node=None):
    """Delete the VM(s) and their disks (the box and the bundle stay, so vm.up is offline again)."""
    s = settings(c)
    vg = vagrant_for(s)
    for n in _targets(s, node):
        with ui.step(f"Destroying VM {n.name}") as st:
            _forget_ssh(s, n.name)
            if vg.status(n.name) != "not_created":
                vg.stream(st, "destroy", "--force", n.name)
            elif not _remove_leftover(s, n.name, st):
                st.skip("nothing to destroy")
                continue
            if n.role == "master":
                (s.state_dir / "kubeconfig").unlink(missing_ok=True)  # it pointed at the old cluster


def _remove_leftover(s, node: str, st) -> bool:
    """A libvirt domain of this checkout that Vagrant lost track of (its .vagrant is gone): remove it."""
    if s.provider != "libvirt":
        return False
    from labkit import libvirt

    name = libvirt.domain_name(s.root, node)
    if not libvirt.exists(name):
        return False
    st.log(f"libvirt still has {name} from a run whose .vagrant state is gone: removing it")
    libvirt.remove(name)
    return True


@labtask(help={"node": "the node (default: the master)", "command": "run this command and exit with its code"})
def ssh(c, node=None, command=None):
    """Open a shell on the VM, or run one command there (--command 'kubectl get nodes')."""
    from invoke import Exit

    s = settings(c)
    n = s.node(node)
    vg = vagrant_for(s)
    if vg.status(n.name) != "running":
        raise LabkitError(f"{n.name} is not running", "run invoke vm.up first")
    code = vg.interactive("ssh", n.name, *(["--command", command] if command else []))
    if code:
        raise Exit(code=code)


@labtask(help={"node": NODE_HELP})
def status(c, node=None):
    """Show each VM's state, provider, address and box."""
    s = settings(c)
    vg = vagrant_for(s)
    rows = [[n.name, n.role, vg.status(n.name), s.provider, n.ip, s.box] for n in _targets(s, node)]
    ui.table("VMs", ["node", "role", "state", "provider", "ip", "box"], rows)


@labtask(help={"save": "save a snapshot with this name (e.g. fresh, cluster-ready)",
               "restore": "return the VM(s) to this snapshot", "delete": "delete this snapshot",
               "list": "list snapshots (the default)", "node": NODE_HELP})
def snapshot(c, save=None, restore=None, delete=None, list=False, node=None):  # noqa: A002 (invoke flag name)
    """Save, restore, list or delete VM snapshots of every node: go back to 'fresh' or 'cluster-ready' in seconds."""
    chosen = [x for x in (save, restore, delete) if x]
    if len(chosen) > 1:
        raise LabkitError("give only one of --save, --restore, --delete", "run them one after the other")
    name = chosen[0] if chosen else None
    if name is not None and not SNAPSHOT_NAME.match(name):
        raise LabkitError(f"'{name}' is not a usable snapshot name", "use letters, digits, '.', '_' and '-', like cluster-ready")
    s = settings(c)
    vg = vagrant_for(s)
    targets = _targets(s, node)
    existing = {}
    for n in targets:  # every node checked before any is changed: a cluster is restored whole or not at all
        if vg.status(n.name) == "not_created":
            raise LabkitError(f"{n.name} does not exist yet", "run invoke vm.up first")
        existing[n.name] = vg.snapshots(n.name)
        if restore and restore not in existing[n.name]:
            have = existing[n.name]
            raise LabkitError(f"{n.name} has no snapshot '{restore}'",
                              "use one of: " + ", ".join(have) if have else "save one first: invoke vm.snapshot --save fresh")
    for n in targets:
        _snapshot_one(s, vg, n, existing[n.name], save, restore, delete)


def _snapshot_one(s, vg, n, existing, save, restore, delete) -> None:
    if save:
        with ui.step(f"Saving snapshot {save} of {n.name}") as st:
            if save in existing:
                vg.stream(st, "snapshot", "delete", n.name, save)  # save means "now", not "the old one"
            vg.stream(st, "snapshot", "save", n.name, save)
    elif restore:
        _forget_ssh(s, n.name)
        with ui.step(f"Restoring {n.name} to snapshot {restore}") as st:
            vg.stream(st, "snapshot", "restore", "--no-provision", n.name, restore)
    elif delete:
        with ui.step(f"Deleting snapshot {delete} of {n.name}") as st:
            if delete not in existing:
                st.skip("no such snapshot")
            else:
                vg.stream(st, "snapshot", "delete", n.name, delete)
    else:
        ui.table(f"Snapshots of {n.name}", ["snapshot"], [[x] for x in existing] or [["(none)"]])
