"""The few Kubernetes API calls cluster tasks make from the laptop, through the official client.

Objects come back as the API server's own JSON (dicts), not as the client's generated models: the
client is years newer than the 1.15 API server, and plain JSON is what `kubectl get -o json` shows,
so the logic in health.py/status.py reads exactly what the server sent.
"""
from __future__ import annotations

import json
import time

from labkit.errors import LabkitError

REQUEST_TIMEOUT = 15
STILL_WAITING_EVERY = 30  # seconds between "still no answer" lines


class ClusterApi:
    def __init__(self, settings):
        from kubernetes import client

        from labkit.kube import api_client

        self.server = settings.master.ip
        self._client = api_client(settings)
        self.core = client.CoreV1Api(self._client)
        self.apps = client.AppsV1Api(self._client)

    def _call(self, method, *args, **kwargs):
        from kubernetes.client.exceptions import ApiException

        from labkit.kube import api_problem, untrusted_server

        try:
            resp = method(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise LabkitError(*api_problem(self.server, exc.status, exc.reason)) from None
        except Exception as exc:  # urllib3 connection errors: the API server is unreachable
            untrusted = untrusted_server(self.server, exc)
            if untrusted:
                raise LabkitError(*untrusted) from None
            raise Unreachable(f"cannot reach the API server at https://{self.server}:6443 ({type(exc).__name__})",
                              "check that the VM runs (invoke vm.status) and that no VPN or firewall blocks "
                              "the host-only network 192.168.56.0/21") from None
        data = resp.data if hasattr(resp, "data") else resp.read()
        return json.loads(data) if data else {}

    def nodes(self) -> list[dict]:
        return self._call(self.core.list_node)["items"]

    def pods(self, namespace: str, selector: str | None = None) -> list[dict]:
        kwargs = {"label_selector": selector} if selector else {}
        return self._call(self.core.list_namespaced_pod, namespace, **kwargs)["items"]

    def events(self, namespace: str) -> list[dict]:
        return self._call(self.core.list_namespaced_event, namespace)["items"]

    def service(self, namespace: str, name: str) -> dict | None:
        return self._call(self.core.read_namespaced_service, name, namespace)

    def daemonset(self, namespace: str, name: str) -> dict | None:
        return self._call(self.apps.read_namespaced_daemon_set, name, namespace)

    def set_taints(self, node: str, taints: list[dict]) -> None:
        """Replace the node's taints (a JSON patch: the client's default content type for patch)."""
        self._call(self.core.patch_node, node, [{"op": "replace", "path": "/spec/taints", "value": taints}])


class Unreachable(LabkitError):
    """The API server did not answer (yet): waits retry on this, everything else stops."""


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
