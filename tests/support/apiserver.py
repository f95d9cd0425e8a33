"""A stand-in for a Kubernetes 1.15 API server on loopback, for the few calls app tasks make.

No 1.15 cluster can run here, so this answers in the API server's wire format (paths, Status
objects, resourceVersion bumps, 404/409/422) and records every request. The real `kubernetes`
client talks to it through a real kubeconfig, so the tests see exactly what app.deploy and
app.delete send. Deliberately small: it stores objects, merges patches the strategic way for the
fields the lab's manifests use, refuses pod spec changes the way 1.15 does, and lets deleted
pods linger as Terminating for a few reads.
"""
from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support.kubeapi import JsonHandler, Loopback, status_body, write_kubeconfig

PATHS = {
    "deployments": "/apis/apps/v1/namespaces/default/deployments",
    "services": "/api/v1/namespaces/default/services",
    "pods": "/api/v1/namespaces/default/pods",
}
KIND_PLURAL = {"Deployment": "deployments", "Service": "services", "Pod": "pods"}
GROUP = {"deployments": "apps", "services": "", "pods": ""}
POD_IMMUTABLE = ("Pod \"{name}\" is invalid: spec: Forbidden: pod updates may not change fields other than "
                 "`spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or "
                 "`spec.tolerations` (only additions to existing tolerations)")


def status(code: int, reason: str, message: str, name: str = "", plural: str = "") -> dict:
    body = status_body(code, reason, message)
    if name:
        body["details"] = {"name": name, "kind": plural, **({"group": GROUP[plural]} if GROUP.get(plural) else {})}
    return body


def merge(live, patch):
    """Strategic merge for what the manifests hold: maps merge, lists of named items merge by name."""
    if isinstance(live, dict) and isinstance(patch, dict):
        out = dict(live)
        for k, v in patch.items():
            out[k] = merge(live[k], v) if k in live else copy.deepcopy(v)
        return out
    if isinstance(live, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in live + patch):
        by_name = {i["name"]: i for i in live}
        return [merge(by_name[i["name"]], i) if i["name"] in by_name else copy.deepcopy(i) for i in patch]
    return copy.deepcopy(patch)


class FakeApiServer:
    def __init__(self, linger: int = 2):
        self.store: dict[tuple[str, str], dict] = {}
        self.requests: list[dict] = []
        self.events: dict[str, list] = {}
        self.nodes: list[dict] = []
        self.linger = linger  # reads a deleted pod stays Terminating
        self.refuse: dict[tuple[str, str], tuple[int, str, str]] = {}  # (plural, name) → (code, reason, message)
        self.after_write = None  # called as after_write(self) after each create/patch: plays controllers and kubelet
        self.outage = None  # (code, reason, message): every request answered so, e.g. a stale kubeconfig's 401
        self._rv = itertools.count(1000)
        self._lock = threading.RLock()  # after_write runs under it and may call put()
        self._terminating: dict[tuple[str, str], int] = {}
        self._loopback = Loopback(type("Handler", (_Handler,), {"fake": self}))
        self.url = self._loopback.url

    def close(self):
        self._loopback.close()

    def write_kubeconfig(self, path: Path) -> None:
        write_kubeconfig(path, self.url, "not-a-secret")

    # --- object life cycle --------------------------------------------------------------

    def stamp(self, plural: str, obj: dict, fresh: bool) -> dict:
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = "default"
        meta["selfLink"] = f"{PATHS[plural]}/{meta['name']}"
        meta["resourceVersion"] = str(next(self._rv))
        if fresh:
            meta["uid"] = f"6f0c6e1a-a3d4-11e9-8f3b-02{next(self._rv):010x}"
            meta["creationTimestamp"] = "2019-07-12T09:44:01Z"
            if plural == "deployments":
                meta["generation"] = 1
                obj.setdefault("status", {})
            if plural == "pods":
                obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
        return obj

    def put(self, obj: dict) -> dict:
        """Seed or replace an object as the cluster would hold it (tests use it to move pods along)."""
        plural = KIND_PLURAL[obj["kind"]]
        with self._lock:
            self.store[(plural, obj["metadata"]["name"])] = self.stamp(plural, copy.deepcopy(obj), fresh=True)
            return self.store[(plural, obj["metadata"]["name"])]

    def get(self, plural: str, name: str):
        key = (plural, name)
        if key in self._terminating:
            self._terminating[key] -= 1
            if self._terminating[key] < 0:
                del self._terminating[key]
                self.store.pop(key, None)
        return self.store.get(key)

    def delete(self, plural: str, name: str) -> bool:
        key = (plural, name)
        if key not in self.store:
            return False
        if plural == "pods" and self.linger:
            self.store[key]["metadata"]["deletionTimestamp"] = "2019-07-12T10:02:11Z"
            self.store[key]["metadata"]["deletionGracePeriodSeconds"] = 30
            self._terminating[key] = self.linger
        else:
            del self.store[key]
            if plural == "deployments":  # its pods go too (background propagation)
                for (p, n) in list(self.store):
                    if p == "pods" and n.startswith(name + "-"):
                        del self.store[(p, n)]
        return True


class _Handler(JsonHandler):
    fake: FakeApiServer

    def parse_request(self):
        if not super().parse_request():
            return False
        if self.fake.outage is None:
            return True
        self.fake.requests.append({"method": self.command, "path": self.path, "outage": self.fake.outage})
        self.close_connection = True  # the body stays unread
        self.reply(self.fake.outage[0], status(*self.fake.outage))
        return False

    def _route(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.fake.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                   "content_type": self.headers.get("Content-Type"), "body": body,
                                   "auth": self.headers.get("Authorization")})
        return url, parse_qs(url.query), body

    def do_GET(self):
        url, query, _ = self._route()
        fake = self.fake
        with fake._lock:
            if url.path == "/api/v1/nodes":
                return self.reply(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": fake.nodes})
            if url.path == "/api/v1/namespaces/default/events":
                name = query.get("fieldSelector", [""])[0].split("involvedObject.name=")[-1]
                return self.reply(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {},
                                        "items": fake.events.get(name, [])})
            if url.path == PATHS["pods"]:
                want = dict(kv.split("=") for kv in query.get("labelSelector", [""])[0].split(",") if kv)
                items = [o for (p, _n), o in sorted(fake.store.items()) if p == "pods"
                         and all(o["metadata"].get("labels", {}).get(k) == v for k, v in want.items())]
                return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
            plural, name = self._item(url.path)
            obj = fake.get(plural, name)
            if obj is None:
                return self._not_found(plural, name)
            return self.reply(200, obj)

    def _item(self, path: str):
        for plural, base in PATHS.items():
            m = re.fullmatch(re.escape(base) + r"/([a-z0-9.-]+)", path)
            if m:
                return plural, m.group(1)
        raise AssertionError(f"unexpected path {path}")

    def _not_found(self, plural, name):
        group = f".{GROUP[plural]}" if GROUP[plural] else ""
        return self.reply(404, status(404, "NotFound", f'{plural}{group} "{name}" not found', name, plural))

    def do_POST(self):
        url, _q, body = self._route()
        fake = self.fake
        plural = next(p for p, base in PATHS.items() if url.path == base)
        name = body["metadata"]["name"]
        with fake._lock:
            if (plural, name) in fake.refuse:
                code, reason, message = fake.refuse[(plural, name)]
                return self.reply(code, status(code, reason, message, name, plural))
            if fake.get(plural, name) is not None:
                group = f".{GROUP[plural]}" if GROUP[plural] else ""
                return self.reply(409, status(409, "AlreadyExists", f'{plural}{group} "{name}" already exists', name, plural))
            fake.store[(plural, name)] = fake.stamp(plural, copy.deepcopy(body), fresh=True)
            created = copy.deepcopy(fake.store[(plural, name)])
            if fake.after_write:
                fake.after_write(fake)
            return self.reply(201, created)

    def do_PATCH(self):
        url, _q, body = self._route()
        fake = self.fake
        plural, name = self._item(url.path)
        if self.headers.get("Content-Type") != "application/strategic-merge-patch+json":
            return self.reply(415, status(415, "UnsupportedMediaType", "the body of the request was in an unknown format"))
        with fake._lock:
            live = fake.get(plural, name)
            if live is None:
                return self._not_found(plural, name)
            if (plural, name) in fake.refuse:
                code, reason, message = fake.refuse[(plural, name)]
                return self.reply(code, status(code, reason, message, name, plural))
            merged = merge(live, body)
            if merged == live:
                return self.reply(200, live)  # a no-op patch: nothing stored, resourceVersion stays
            if plural == "pods":
                def frozen(spec):
                    spec = copy.deepcopy(spec)
                    for c in spec.get("containers", []):
                        c.pop("image", None)
                    return spec
                if frozen(merged["spec"]) != frozen(live["spec"]):
                    return self.reply(422, status(422, "Invalid", POD_IMMUTABLE.format(name=name), name, plural))
            if plural == "deployments" and merged["spec"] != live["spec"]:
                merged["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
            fake.store[(plural, name)] = fake.stamp(plural, merged, fresh=False)
            if fake.after_write:
                fake.after_write(fake)
            return self.reply(200, merged)

    def do_DELETE(self):
        url, _q, _body = self._route()
        plural, name = self._item(url.path)
        with self.fake._lock:
            if not self.fake.delete(plural, name):
                return self._not_found(plural, name)
        return self.reply(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                "details": {"name": name, "kind": plural}})
