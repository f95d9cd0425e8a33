"""app.*: the inventory image built in the VM, and the lab's objects on the cluster (lab 7, sections 6-8)."""
from __future__ import annotations

from labkit import ui
from labkit.errors import LabkitError
from labkit.tasks._common import labtask, settings

DEPLOY_TIMEOUT = 180
DELETE_TIMEOUT = 90


def _targets(s, node):
    # With imagePullPolicy Never the image must exist on every node a pod may land on.
    return [s.node(node)] if node else s.nodes


def _ssh(s, node_name: str):
    from labkit.backends import Ssh
    from labkit.vagrant import Vagrant

    return Ssh.for_node(s, Vagrant(s.root), node_name)


def ensure_image(s, plan, node_name: str, force: bool = False) -> None:
    """Build plan.tag in the node's Docker unless an image of the same build context is there."""
    from labkit.app import build as build_mod
    from labkit.app import dockerssh

    ssh = _ssh(s, node_name)
    try:
        with ui.step(f"Building {plan.tag} in {node_name}") as st, dockerssh.docker_client(ssh, node_name) as client:
            have = build_mod.current(client, plan.tag)
            if have == plan.digest and not force:
                st.skip("up to date")
                return
            why = "forced" if have == plan.digest else ("not built yet" if have is None else "inv/ changed")
            st.log(f"{why}: FROM {plan.base}, context inv/ ({', '.join(plan.files)}), digest {plan.digest[:12]}")
            image_id = build_mod.build(client, plan, node_name, st.log)
            st.log(f"image {image_id[:19]}")
    finally:
        ssh.close()


@labtask(help={"force": "build even if the image in the VM is up to date",
               "node": "only this node (default: every node, since pods never pull the image)",
               "dry_run": "show what would be built, change nothing"})
def build(c, force=False, node=None, dry_run=False):
    """Build trash-can/inv from inv/ in the VM's Docker (over SSH), streaming the build. Safe to re-run."""
    from labkit.app import build as build_mod

    s = settings(c)
    plan = build_mod.plan(s)
    targets = _targets(s, node)
    if dry_run:
        ui.say(f"would build {plan.tag} FROM {plan.base} in {', '.join(n.name for n in targets)}"
               f"{'' if force else ' (skipped where an image of the same context exists)'}")
        ui.say(f"context {plan.context}: {', '.join(plan.files)}")
        ui.say(f"context digest {plan.digest}")
        return
    for n in targets:
        ensure_image(s, plan, n.name, force=force)


def _cluster(s):
    from labkit import kube
    from labkit.app.apply import Cluster

    return Cluster(kube.Api(s))


def _objects(s):
    from labkit.app import build as build_mod
    from labkit.app import objects

    plan = build_mod.plan(s)
    return plan, objects.load(s, build_mod.images(s), plan.digest)


@labtask(help={"dry_run": "print the objects that would be applied (YAML), change nothing",
               "timeout": f"seconds to wait for the pods (default {DEPLOY_TIMEOUT})"})
def deploy(c, dry_run=False, timeout=DEPLOY_TIMEOUT):
    """Build the image if needed, apply manifests/ (create or update) and wait for can-inventory 2/2, web, client."""
    from labkit.app import apply as apply_mod
    from labkit.app import build as build_mod
    from labkit.app import objects, rollout

    s = settings(c)
    plan, objs = _objects(s)
    if dry_run:
        ui.say(f"# would build {plan.tag} in {', '.join(n.name for n in s.nodes)} unless it is up to date "
               f"(context digest {plan.digest[:12]}), then apply:")
        ui.say(objects.to_yaml(objs).rstrip())
        return
    cluster = _cluster(s)  # a missing kubeconfig fails here, before any build
    for n in s.nodes:
        ensure_image(s, plan, n.name)
    with ui.step("Applying manifests/") as st:
        def gone(kind, name):
            apply_mod.wait_gone(cluster, kind, name, DELETE_TIMEOUT, st.log)

        actions = [(objects.ref(o), apply_mod.apply(cluster, o, gone)) for o in objs]
        for name, action in actions:
            st.log(f"{name} {action}")
        if all(a == "unchanged" for _n, a in actions):
            st.skip("all unchanged")
    names = ", ".join(objects.ref(o) for o in objs if o["kind"] in rollout.WATCHED)
    with ui.step(f"Waiting for {names}") as st:
        try:
            rollout.wait(cluster, objs, build_mod.images(s), float(timeout), st.log)
        except rollout.RolloutTimeout as exc:
            ui.table("Pods", ["pod", "status", "ready", "restarts", "node"], exc.pods or [["(none)", "", "", "", ""]])
            if exc.events:
                ui.table("Warning events", ["reason", "object", "message"], exc.events)
            raise


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
