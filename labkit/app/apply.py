"""Create-or-update of the lab's objects through the official kubernetes client.

The typed APIs carry paths, TLS and credentials; answers are read as plain JSON dicts
(`_preload_content=False`) rather than the client's models, so the logic here sees exactly what a
1.15 API server sends, whatever client version is installed.

Update is a strategic merge patch of the manifest, like `kubectl apply` without its annotation:
the server keeps what it defaulted, and an identical patch changes nothing (the resourceVersion
stays, which is how "unchanged" is told from "configured"). A Pod's spec is mostly immutable, so a
Pod whose spec changed is deleted and created again ("replaced").
"""
from __future__ import annotations

import time
from typing import Callable, Optional

from labkit.app.objects import NAMESPACE, ref
from labkit.errors import LabkitError
from labkit.kube.errors import ApiError


class Cluster:
    """The lab's namespace seen through the API door (labkit.kube.Api): what app tasks read and write."""

    def __init__(self, api, namespace: str = NAMESPACE):
        self.api, self.namespace = api, namespace

    def get(self, kind: str, name: str) -> Optional[dict]:
        return self.api.get(kind, self.namespace, name)

    def create(self, obj: dict) -> dict:
        return self.api.create(self.namespace, obj)

    def patch(self, obj: dict) -> dict:
        return self.api.patch(self.namespace, obj)

    def delete(self, kind: str, name: str) -> bool:
        return self.api.delete(kind, self.namespace, name)

    def pods(self, selector: dict) -> list[dict]:
        return self.api.pods(self.namespace, selector)

    def events(self, name: str) -> list[dict]:
        return self.api.events(self.namespace, involving=name)

    def nodes(self) -> list[dict]:
        return self.api.nodes()


def apply(cluster: Cluster, obj: dict, wait_gone: Callable[[str, str], None]) -> str:
    """Create or update one object. Returns what happened, in kubectl's words."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    live = cluster.get(kind, name)
    try:
        if live is None:
            cluster.create(obj)
            return "created"
        if live["metadata"].get("deletionTimestamp"):
            wait_gone(kind, name)  # still terminating from an app.delete: wait, then create anew
            cluster.create(obj)
            return "created"
        try:
            new = cluster.patch(obj)
        except ApiError as exc:
            if kind == "Pod" and exc.status == 422:  # a field of a running pod that cannot change
                cluster.delete(kind, name)
                wait_gone(kind, name)
                cluster.create(obj)
                return "replaced"
            raise
    except ApiError as exc:
        if exc.status >= 500:  # the server, not the manifest
            raise
        raise LabkitError(f"the API server refused {ref(obj)}: {exc.detail}",
                          "fix the manifest in manifests/ (invoke app.deploy --dry-run shows what is sent)") from None
    same = new["metadata"].get("resourceVersion") == live["metadata"].get("resourceVersion")
    return "unchanged" if same else "configured"


def wait_gone(cluster: Cluster, kind: str, name: str, timeout: float, log: Callable[[str], None],
              interval: float = 0.5, clock=time.monotonic, sleep=time.sleep) -> None:
    deadline = clock() + timeout
    said = False
    while cluster.get(kind, name) is not None:
        if clock() >= deadline:
            raise LabkitError(f"{kind.lower()}/{name} is still terminating after {timeout:g}s",
                              "wait a little and run the command again (kubectl get pods shows it)")
        if not said:
            log(f"waiting for {kind.lower()}/{name} to terminate")
            said = True
        sleep(interval)

