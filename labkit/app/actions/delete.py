"""The lab's objects deleted from the cluster (pods, Deployment, Service), waiting until they and the pods are gone."""
from __future__ import annotations

import time

from labkit.app import apply as apply_mod
from labkit.app import objects
from labkit.errors import LabkitError
from labkit.steps import Step


class DeleteObjects(Step):
    title = "Deleting the lab's objects"

    def __init__(self, objs: list[dict]):
        self.doomed = list(reversed(objs))

    def describe(self, ctx) -> list[str]:
        return [f"delete {', '.join(objects.ref(o) for o in self.doomed)} (the image stays in the VM); "
                f"then wait up to {ctx.timeout:g}s until they and the Deployment's pods are gone"]

    def run(self, ctx, st) -> None:
        cluster, timeout = apply_mod.Cluster(ctx.api), float(ctx.timeout)
        deleted = []
        for o in self.doomed:
            if cluster.delete(o["kind"], o["metadata"]["name"]):
                deleted.append(o)
                st.log(f"{objects.ref(o)} deleted")
        if not deleted:
            st.skip("nothing to delete")
            return
        for o in deleted:
            apply_mod.wait_gone(cluster, o["kind"], o["metadata"]["name"], timeout, st.log)
        for o in deleted:
            if o["kind"] == "Deployment":
                wait_no_pods(cluster, o, timeout, st.log)


def wait_no_pods(cluster, deployment: dict, timeout: float, log) -> None:
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
