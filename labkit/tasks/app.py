"""app.*: the inventory image built in the VM, and the lab's objects on the cluster (lab 7, sections 6-8).

build and deploy run a list of steps (labkit/app/actions/, one file each); --dry-run prints the same list.
"""
from __future__ import annotations

from labkit import ui
from labkit.errors import LabkitError
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


def _cluster(s):
    from labkit import kube
    from labkit.app.apply import Cluster

    return Cluster(kube.Api(s))


def _objects(s):
    from labkit.app import build as build_mod
    from labkit.app import objects

    plan = build_mod.plan(s)
    return plan, objects.load(s, build_mod.images(s), plan.digest)


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
    from labkit.app import apply as apply_mod
    from labkit.app import objects

    s = settings(c)
    _plan, objs = _objects(s)
    doomed = list(reversed(objs))
    if dry_run:
        ui.say("would delete: " + ", ".join(objects.ref(o) for o in doomed))
        return
    cluster = _cluster(s)
    with ui.step("Deleting the lab's objects") as st:
        deleted = []
        for o in doomed:
            if cluster.delete(o["kind"], o["metadata"]["name"]):
                deleted.append(o)
                st.log(f"{objects.ref(o)} deleted")
        if not deleted:
            st.skip("nothing to delete")
            return
        for o in deleted:
            apply_mod.wait_gone(cluster, o["kind"], o["metadata"]["name"], float(timeout), st.log)
        for o in deleted:
            if o["kind"] == "Deployment":
                _wait_no_pods(cluster, o, float(timeout), st.log)


def _wait_no_pods(cluster, deployment: dict, timeout: float, log) -> None:
    import time

    selector = deployment["spec"]["selector"]["matchLabels"]
    deadline = time.monotonic() + timeout
    said = False
    while cluster.pods(selector):
        if time.monotonic() >= deadline:
            raise LabkitError(f"pods of {deployment['metadata']['name']} are still terminating after {timeout:g}s",
                              "wait a little and run invoke app.delete again")
        if not said:
            log(f"waiting for the pods of {deployment['metadata']['name']} to terminate")
            said = True
        time.sleep(0.5)
