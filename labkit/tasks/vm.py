"""vm.*: the lab's virtual machines, through Vagrant (create → provision → halt → destroy, snapshots).

up, provision, halt, destroy and snapshot run a list of steps (labkit/vm/actions/, one file each); --dry-run prints the
same list.
"""
from __future__ import annotations

from labkit import ui
from labkit.errors import LabkitError
from labkit.steps import context, perform
from labkit.tasks._common import labtask, settings, vagrant_for

NODE_HELP = "only this node (default: every node in settings)"
DRY_RUN_HELP = "print the steps and what each would do, change nothing"


def _targets(s, node):
    from labkit.cluster import nodeset

    return [s.node(node)] if node else nodeset.every_node(s)


def _context(s):
    return context(s, open_vagrant=lambda: vagrant_for(s))


@labtask(help={"node": NODE_HELP, "dry_run": DRY_RUN_HELP})
def up(c, node=None, dry_run=False):
    """Create and start the lab VM(s) and provision them offline from the bundle. Safe to re-run."""
    from labkit.vm.actions import up_plan

    s = settings(c)
    perform(up_plan(s, _targets(s, node)), _context(s), dry_run)


@labtask(help={"node": NODE_HELP, "step": "run only this provision/ script (e.g. base)", "dry_run": DRY_RUN_HELP})
def provision(c, node=None, step=None, dry_run=False):
    """Run the provision/ scripts again on running VM(s); they skip what is already done."""
    from labkit.vm.actions import provision_plan

    s = settings(c)
    if step and step not in s.data["provision"]:
        raise LabkitError(f"'{step}' is not a provision step", "use one of: " + ", ".join(s.data["provision"]))
    perform(provision_plan(s, _targets(s, node), step), _context(s), dry_run)


@labtask(help={"node": NODE_HELP, "dry_run": DRY_RUN_HELP})
def halt(c, node=None, dry_run=False):
    """Shut the VM(s) down gracefully; vm.up starts them again where they were."""
    from labkit.vm.actions import halt_plan

    s = settings(c)
    perform(halt_plan(s, _targets(s, node)), _context(s), dry_run)


@labtask(help={"node": NODE_HELP, "dry_run": DRY_RUN_HELP})
def destroy(c, node=None, dry_run=False):
    """Delete the VM(s) and their disks (the box and the bundle stay, so vm.up is offline again)."""
    from labkit.vm.actions import destroy_plan

    s = settings(c)
    perform(destroy_plan(s, _targets(s, node)), _context(s), dry_run)


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
               "list": "list snapshots (the default)", "node": NODE_HELP, "dry_run": DRY_RUN_HELP})
def snapshot(c, save=None, restore=None, delete=None, list=False, node=None, dry_run=False):  # noqa: A002 (invoke flag name)
    """Save, restore, list or delete VM snapshots of every node: go back to 'fresh' or 'cluster-ready' in seconds."""
    from labkit.vm import SNAPSHOT_NAME
    from labkit.vm.actions import snapshot_plan

    chosen = [x for x in (save, restore, delete) if x]
    if len(chosen) > 1:
        raise LabkitError("give only one of --save, --restore, --delete", "run them one after the other")
    name = chosen[0] if chosen else None
    if name is not None and not SNAPSHOT_NAME.match(name):
        raise LabkitError(f"'{name}' is not a usable snapshot name", "use letters, digits, '.', '_' and '-', like cluster-ready")
    s = settings(c)
    targets = _targets(s, node)
    if name is not None:
        perform(snapshot_plan(s, targets, save, restore, delete), _context(s), dry_run)
        return
    vg = vagrant_for(s)
    for n in targets:
        if vg.status(n.name) == "not_created":
            raise LabkitError(f"{n.name} does not exist yet", "run invoke vm.up first")
    for n in targets:
        ui.table(f"Snapshots of {n.name}", ["snapshot"], [[x] for x in vg.snapshots(n.name)] or [["(none)"]])
