"""Sections 5-8 judged by `invoke verify`'s checks, told the way a student doing the lab by hand needs it.

verify speaks to someone running the kit ("invoke cluster.init", "invoke app.deploy"). For each of
these sections this module takes verify's results and gives, for the check that failed first, its
cause and the lab's own next command with this VM's substitutions (docs/student.md):

  * a check skipped because another one failed carries that one's cause and fix, wherever it is
    (section 5's real cause, node NotReady without a pod network, is checked under section 3);
  * the pod network: `kubectl apply -f` of the bundle's Weave manifest (the lab's URL is offline);
  * `kubectl run` without `--generator=run-pod/v1` (a Deployment `web-…`, no pod `web`):
    `kubectl delete deployment web`, then the lab's command with the generator and a bundled tag;
  * an image that cannot be pulled: `nginx` means `nginx:latest`, which Kubernetes pulls on every
    start (imagePullPolicy Always); offline only the VM's registry mirror of the bundle can serve it
    (provision/files/labkit-mirror.py), so a failed untagged pull is told apart from a tag the bundle lacks;
  * the inventory image never built (imagePullPolicy: Never): the lab's `docker build` in ~/trash-can/inv;
  * CoreDNS looping on a loopback resolver: the kubelet's --resolv-conf as the kit's provisioning writes it;
  * anything else: verify's own cause, its fix unwrapped from `invoke vm.ssh --command "..."`.

Pure: the results and the API snapshot (kubectl get -o json objects) in, checks.Checked out.
"""
from __future__ import annotations

import re
from typing import Optional

from labkit import checks as model
from labkit.kube.objects import MASTER_TAINT, labels, missing_images, name
from labkit.student.checks import Want

INV_DIR = "~/trash-can/inv"  # where the lab works in section 7 (and where section.start puts the sources)


def _section(c: model.Checked) -> Optional[int]:
    return getattr(c.check, "section", None)


def section_checks(n: int, results: list, snap, want: Want) -> list[model.Checked]:
    """Section n's checks from verify's results: a failure told with the lab's command, a skip with
    the cause and command of the check that failed first (in any section)."""
    every = list(results)  # verify's labkit.checks.Checked, each check with its section
    by_id = {c.check.id: c for c in every}
    out = []
    for c in every:
        if _section(c) != n:
            continue
        if c.status == model.FAIL:
            c = model.Checked(c.check, told(c, snap, want, n), c.seconds)
        elif c.status == model.SKIP:
            root = model.root_of(c, by_id)
            if root is not c and root.status == model.FAIL:
                r = told(root, snap, want, n)
                c = model.Checked(c.check, model.Result(model.SKIP, c.result.detail, r.cause, r.fix, r.key,
                                                        root.check.id), c.seconds)
        out.append(c)
    if not out:  # verify planned nothing for this section: say so rather than call it done or not started
        from labkit.student.sections import SectionCheck

        out.append(model.Checked(SectionCheck("verify", f"invoke verify's checks of section {n}", None, section=n),
                                 model.failed("no check", f"invoke verify has no check for section {n}",
                                              f"invoke verify --section {n}", "no-verify-checks")))
    return out


# What the kit's own tasks do in a verify fix, as the lab does it in these sections.
LAB_APPLY = {7: f"cd {INV_DIR} && kubectl apply -f deploy.yaml", 8: f"cd {INV_DIR} && kubectl apply -f service.yaml"}


def unwrap(fix: str, section: int = 0) -> str:
    """verify's `invoke vm.ssh --command "CMD"` is CMD for a student already in the VM, and its
    `invoke app.deploy` (the kit re-applies manifests/) is the section's own `kubectl apply -f`."""
    fix = re.sub(r'invoke vm\.ssh --command "([^"]*)"', r"\1", fix.strip())
    if section in LAB_APPLY:
        fix = re.sub(r"invoke app\.deploy( \([^)]*\))?", LAB_APPLY[section], fix)
    return fix


def told(c: model.Checked, snap, want: Want, section: int = 0) -> model.Result:
    """One failed verify check, as a student doing the lab needs it: the cause and the lab's command."""
    r = c.result
    key, cid = r.key, c.check.id

    def say(cause: str, fix: str, new_key: str = "") -> model.Result:
        return model.failed(r.detail, cause, fix, new_key or key)

    if key == "cni-missing":
        return say(r.cause + ". The lab's Weave URL (cloud.weave.works) needs the internet; the bundle has "
                   "the manifest on the VM", f"kubectl apply -f {want.weave_manifest}", "no-cni")
    if key == "coredns-crash":  # a loopback resolver handed to pods: the kubelet's flags as the kit writes them
        return say(r.cause, f"echo '{want.kubelet_args}' | sudo tee /etc/default/kubelet && sudo systemctl restart "
                            "kubelet && kubectl -n kube-system delete pod -l k8s-app=kube-dns")
    if key == "master-taint":
        return say(r.cause, f"kubectl taint nodes --all {MASTER_TAINT}-")
    pod = {"web.running": "web", "client.running": "client"}.get(cid)
    if pod:
        return _pod_told(pod, r, snap, want, say)
    if cid == "deploy.available":
        return _deployment_told(r, snap, want, say)
    if key == "svc-missing":
        return say(r.cause + f": write service.yaml as the lab prints it in {INV_DIR}, then apply it",
                   f"cd {INV_DIR} && kubectl apply -f service.yaml", "no-service")
    return say(r.cause, unwrap(r.fix, section))


def _pods(snap, namespace: str = "default") -> list:
    return list(((snap.pods if snap is not None else {}) or {}).get(namespace) or [])


def _run_command(pod: str, want: Want) -> str:
    """The lab's `kubectl run` for web or client, with the image's bundled tag (docs/student.md, section 6)."""
    return f"kubectl run {pod} --image {want.images[pod]} --generator=run-pod/v1" + (" -it" if pod == "client" else "")


def _pod_told(pod: str, r: model.Result, snap, want: Want, say) -> model.Result:
    run = _run_command(pod, want)
    if r.key == "not-deployed":
        # `kubectl run web --image nginx` without the generator: kubectl 1.15 makes a Deployment
        # (deployment/apps.v1, deprecated) whose pods are web-<replicaset hash>-<id>, labelled run=web.
        made = [p for p in _pods(snap) if labels(p).get("run") == pod and
                any(o.get("kind") == "ReplicaSet" for o in (p.get("metadata") or {}).get("ownerReferences") or [])]
        if made:
            return say(f"there is no pod {pod}: kubectl run without --generator=run-pod/v1 made a Deployment {pod} "
                       f"(its pod is {name(made[0])}); the lab runs a bare pod",
                       f"kubectl delete deployment {pod} && {run}", "run-made-deployment")
        return say(f"there is no pod {pod} yet", run, "no-pod")
    found = next((p for p in _pods(snap) if name(p) == pod), None)
    image_problem = _image_told(found, pod, want) if found else None
    if image_problem:
        cause, key = image_problem
        return say(cause, f"kubectl delete pod {pod} && {run}", key)
    return say(r.cause, unwrap(r.fix))


def _image_told(pod: dict, which: str, want: Want) -> Optional[tuple]:
    """(cause, key) when the pod's image cannot come to the node, or None."""
    for image, reason in missing_images(pod):
        bundled = want.images.get(which, "")
        repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        if reason == "ErrImageNeverPull":
            return (f"image {image} is not in the node's Docker and the pod may not pull it (imagePullPolicy: Never)",
                    "image-never-pull")
        if not tag or tag == "latest":
            means = f"image {image}" + ("" if tag else f" means {repo}:latest")
            return (f"{means}: Kubernetes pulls a :latest image on every start (imagePullPolicy Always), the VM is "
                    f"offline and its registry mirror of the bundle (labkit-mirror) did not serve it ({reason}); the "
                    f"bundle has {bundled}, already on the node", "latest-offline")
        if image != bundled:
            return (f"image {image} is not in the bundle ({reason}: the VM is offline and has {bundled})",
                    "not-in-bundle")
        return (f"image {image} is not on the node ({reason}) although the bundle has it", "image-not-loaded")
    return None


def _deployment_told(r: model.Result, snap, want: Want, say) -> model.Result:
    if r.key == "not-deployed":
        return say(r.cause + f": write deploy.yaml as the lab prints it in {INV_DIR}, then apply it",
                   f"cd {INV_DIR} && kubectl apply -f deploy.yaml", "no-deployment")
    stuck = [p for p in _pods(snap) if labels(p).get("app") == "inv" and missing_images(p)]
    if stuck:
        image, reason = missing_images(stuck[0])[0]
        if reason == "ErrImageNeverPull":
            return say(f"{name(stuck[0])} cannot start: image {image} was never built on this node and the "
                       "Deployment forbids pulling it (imagePullPolicy: Never)",
                       f"cd {INV_DIR} && docker build -t {image} .", "inv-not-built")
        return say(f"{name(stuck[0])} cannot start: image {image} cannot be pulled ({reason}); the lab's "
                   f"Deployment uses {want.images['inv']} with imagePullPolicy: Never",
                   f"cd {INV_DIR} && vim deploy.yaml && kubectl apply -f deploy.yaml", "inv-image")
    if r.key == "deploy-replicas":
        return say(r.cause, f"cd {INV_DIR} && kubectl apply -f deploy.yaml")
    return say(r.cause, unwrap(r.fix, 7))
