"""app.*: the inventory image built in the VM, and the lab's objects on the cluster (lab 7, sections 6-8).

build, deploy and delete run a list of steps (labkit/app/actions/, one file each); --dry-run prints the same list.
"""
from __future__ import annotations

from labkit.tasks._common import labtask, settings
from labkit.steps import context, perform

DEPLOY_TIMEOUT = 180
DELETE_TIMEOUT = 90


def _targets(s, node):
    # With imagePullPolicy Never the image must exist on every node a pod may land on.
    return [s.node(node)] if node else s.nodes


@labtask(help={"force": "build even if the image in the VM is up to date",
               "node": "only this node (default: every node, since pods never pull the image)",
               "dry_run": "show what would be built, change nothing"})
def build(c, force=False, node=None, dry_run=False):
    """Build trash-can/inv from inv/ in the VM's Docker (over SSH), streaming the build. Safe to re-run."""
    from labkit.app.actions import build_plan

    s = settings(c)
    perform(build_plan(s, _targets(s, node), force), context(s), dry_run)


@labtask(help={"dry_run": "print the steps, with the objects that would be applied (YAML); change nothing",
               "timeout": f"seconds to wait for the pods (default {DEPLOY_TIMEOUT})"})
def deploy(c, dry_run=False, timeout=DEPLOY_TIMEOUT):
    """Build the image if needed, apply manifests/ (create or update) and wait for can-inventory 2/2, web, client."""
    from labkit.app.actions import deploy_plan

    s = settings(c)
    plan, ctx = deploy_plan(s), context(s, timeout)
    if not dry_run:
        ctx.open()  # a missing kubeconfig fails here, before any build
    perform(plan, ctx, dry_run)


@labtask(help={"dry_run": "list what would be deleted, change nothing",
               "timeout": f"seconds to wait until everything is gone (default {DELETE_TIMEOUT})"})
def delete(c, dry_run=False, timeout=DELETE_TIMEOUT):
    """Delete the lab's Deployment, Service and pods from the cluster (the image stays in the VM)."""
    from labkit.app.actions import delete_plan

    s = settings(c)
    plan, ctx = delete_plan(s), context(s, timeout)
    if not dry_run:
        ctx.open()  # a missing kubeconfig is one line, before any step
    perform(plan, ctx, dry_run)
