"""The one door to the Kubernetes API: the official client, configured by the exported kubeconfig.

cluster.init writes the kubeconfig to .labkit/kubeconfig (0600, server https://<host-only IP>:6443);
cluster, app and verify reach the cluster only through `Api(settings)` here.

    errors   the error types every caller sees (unreachable, unauthorized, untrusted certificate, API error)
    objects  the readers of API objects: Ready, the master taint, waiting/crash reasons, kube-dns address

Objects come back as the API server's own JSON (dicts), not as the client's generated models: the
client is years newer than the 1.15 API server, and plain JSON is what `kubectl get -o json` shows.
The `kubernetes` package is imported only when a door is opened (startup time of `invoke --list`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from labkit.errors import LabkitError
from labkit.kube.errors import ApiError, BadKubeconfig, KubeError, NoKubeconfig, Unreachable, classify

REQUEST_TIMEOUT = 20
STILL_WAITING_EVERY = 30  # seconds between "still no answer" lines
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
# kind → (typed API in kubernetes.client, method suffix): the objects app tasks create and delete
KINDS = {
    "Deployment": ("apps", "namespaced_deployment"),
    "Service": ("core", "namespaced_service"),
    "Pod": ("core", "namespaced_pod"),
    "Endpoints": ("core", "namespaced_endpoints"),
    "DaemonSet": ("apps", "namespaced_daemon_set"),
}


def kubeconfig_path(settings) -> Path:
    return settings.state_dir / "kubeconfig"


def api_client(settings):
    """A kubernetes.client.ApiClient for the lab cluster, or NoKubeconfig/BadKubeconfig."""
    from kubernetes import client, config

    path = kubeconfig_path(settings)
    if not path.is_file():
        raise NoKubeconfig(path)
    configuration = client.Configuration()
    # urllib3 retries 3 times with back-off by default: a stopped VM would take ~16 s to report.
    configuration.retries = 1
    try:
        return config.new_client_from_config(config_file=str(path), client_configuration=configuration,
                                             persist_config=False)
    except Exception as exc:  # a malformed or foreign kubeconfig
        raise BadKubeconfig(path, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from None


class Api:
    """The calls labkit makes, answering plain dicts; every failure is one of labkit.kube.errors."""

    def __init__(self, settings, timeout=REQUEST_TIMEOUT):
        from kubernetes import client

        self._client = api_client(settings)
        self.server = self._client.configuration.host
        self.timeout = timeout  # seconds, or (connect, read)
        self.core = client.CoreV1Api(self._client)
        self.apps = client.AppsV1Api(self._client)
        self._version = client.VersionApi(self._client)

    def call(self, method, *args, **kwargs) -> dict:
        try:
            resp = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        except Exception as exc:
            raise classify(exc, self.server) from None
        data = resp.data if hasattr(resp, "data") else resp.read()
        return _json(data)

    def read(self, method, *args, **kwargs) -> Optional[dict]:
        """call(), with None for an object that does not exist (404)."""
        try:
            return self.call(method, *args, **kwargs)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    # --- reads ---------------------------------------------------------------------------------

    def version(self) -> dict:
        return self.call(self._version.get_code)

    def nodes(self) -> list[dict]:
        return self.call(self.core.list_node).get("items", [])

    def pods(self, namespace: str, selector: "dict | str | None" = None) -> list[dict]:
        if isinstance(selector, dict):
            selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        kwargs = {"label_selector": selector} if selector else {}
        return self.call(self.core.list_namespaced_pod, namespace, **kwargs).get("items", [])

    def events(self, namespace: str, involving: Optional[str] = None) -> list[dict]:
        kwargs = {"field_selector": f"involvedObject.name={involving}"} if involving else {}
        return self.call(self.core.list_namespaced_event, namespace, **kwargs).get("items", [])

    def get(self, kind: str, namespace: str, name: str) -> Optional[dict]:
        return self.read(self._method("read", kind), name, namespace)

    # --- writes --------------------------------------------------------------------------------

    def create(self, namespace: str, obj: dict) -> dict:
        return self.call(self._method("create", obj["kind"]), namespace, obj)

    def patch(self, namespace: str, obj: dict) -> dict:
        """A strategic merge patch of the manifest: what `kubectl apply` sends, minus its annotation."""
        return self.call(self._method("patch", obj["kind"]), obj["metadata"]["name"], namespace, obj,
                         _content_type=STRATEGIC_MERGE)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete (children in the background, as kubectl does); False if it was not there."""
        return self.read(self._method("delete", kind), name, namespace, propagation_policy="Background") is not None

    def set_taints(self, node: str, taints: list[dict]) -> None:
        """Replace the node's taints (a JSON patch: the client's default content type for patch)."""
        self.call(self.core.patch_node, node, [{"op": "replace", "path": "/spec/taints", "value": taints}])

    def _method(self, verb: str, kind: str):
        api, suffix = KINDS[kind]
        return getattr(self.apps if api == "apps" else self.core, f"{verb}_{suffix}")


def wait_reachable(call, timeout: float, show, interval: float = 3.0, clock=time.monotonic,
                   sleep=time.sleep) -> bool:
    """Retry `call` until the API server answers: after a VM boot it needs a minute or two.

    True if it answered at once, False after waiting; LabkitError once `timeout` seconds pass.
    """
    start = clock()
    shown = None
    while True:
        try:
            call()
            return shown is None
        except Unreachable as exc:
            waited = clock() - start
            if waited >= timeout:
                raise LabkitError(f"the API server did not answer within {timeout:g}s: {exc.message}", exc.fix) from None
            if shown is None:
                show(f"{exc.message}; waiting up to {timeout:g}s")
                shown = waited
            elif waited - shown >= STILL_WAITING_EVERY:
                show(f"still no answer after {waited:.0f}s")
                shown = waited
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


__all__ = ["Api", "KubeError", "api_client", "kubeconfig_path", "wait_reachable"]
