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

import json
import time
from typing import Callable, Optional

from labkit.errors import LabkitError
from labkit.app.objects import NAMESPACE, ref

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
REQUEST_TIMEOUT = 20
# kind → (typed API class name in kubernetes.client, method suffix)
APIS = {
    "Deployment": ("AppsV1Api", "namespaced_deployment"),
    "Service": ("CoreV1Api", "namespaced_service"),
    "Pod": ("CoreV1Api", "namespaced_pod"),
}


class ApiError(LabkitError):
    """An API answer other than success. A LabkitError, so one not handled below is one line, not a traceback."""

    def __init__(self, server: str, status: int, reason: str, message: str):
        from labkit.kube import api_problem

        super().__init__(*api_problem(server, status, reason, message))
        self.status, self.reason, self.detail = status, reason, message


class Cluster:
    """The few API calls app tasks make, answering plain dicts. `api_client` from labkit.kube."""

    def __init__(self, api_client, namespace: str = NAMESPACE):
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.server = api_client.configuration.host

    def _call(self, method, *args, **kwargs):
        from kubernetes.client.exceptions import ApiException

        from labkit.kube import untrusted_server

        try:
            resp = method(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as exc:
            body = _json(exc.body)
            raise ApiError(self.server, exc.status, body.get("reason") or exc.reason or "",
                           body.get("message") or str(exc.body)) from None
        except Exception as exc:  # urllib3: refused, timed out, TLS: the cluster is not there
            untrusted = untrusted_server(self.server, exc)
            if untrusted:
                raise LabkitError(*untrusted) from None
            if type(exc).__module__.startswith(("urllib3", "ssl", "socket")) or isinstance(exc, OSError):
                raise LabkitError(f"cannot reach the Kubernetes API at {self.server} ({_short(exc)})",
                                  "start the VM and the cluster: invoke vm.up, then invoke cluster.init") from None
            raise
        return _json(resp.data)

    def _api(self, kind: str):
        cls, suffix = APIS[kind]
        return (self.apps if cls == "AppsV1Api" else self.core), suffix

    def get(self, kind: str, name: str) -> Optional[dict]:
        api, suffix = self._api(kind)
        try:
            return self._call(getattr(api, f"read_{suffix}"), name, self.namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, obj: dict) -> dict:
        api, suffix = self._api(obj["kind"])
        return self._call(getattr(api, f"create_{suffix}"), self.namespace, obj)

    def patch(self, obj: dict) -> dict:
        api, suffix = self._api(obj["kind"])
        return self._call(getattr(api, f"patch_{suffix}"), obj["metadata"]["name"], self.namespace, obj,
                          _content_type=STRATEGIC_MERGE)

    def delete(self, kind: str, name: str) -> bool:
        """Delete (children in the background, as kubectl does); False if it was not there."""
        api, suffix = self._api(kind)
        try:
            self._call(getattr(api, f"delete_{suffix}"), name, self.namespace, propagation_policy="Background")
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

    def pods(self, selector: dict) -> list[dict]:
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return self._call(self.core.list_namespaced_pod, self.namespace, label_selector=label_selector)["items"]

    def events(self, name: str) -> list[dict]:
        return self._call(self.core.list_namespaced_event, self.namespace,
                          field_selector=f"involvedObject.name={name}")["items"]

    def nodes(self) -> list[dict]:
        return self._call(self.core.list_node)["items"]


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
        if exc.status in (401, 403) or exc.status >= 500:  # credentials or the server, not the manifest
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


def _json(data) -> dict:
    if not data:
        return {}
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    try:
        value = json.loads(data)
    except ValueError:
        return {"message": data.strip()[:300]}
    return value if isinstance(value, dict) else {}


def _short(exc: Exception) -> str:
    # urllib3's MaxRetryError wraps the cause; its last ": " part is the readable bit ("[Errno 111] Connection refused").
    text = str(getattr(exc, "reason", None) or exc)
    return text.rsplit(": ", 1)[-1][:160]
