"""verify's API reader through the official kubernetes client, against a real HTTP server on loopback
that answers the lab transcript's objects at the Kubernetes API's paths (a 1.15 cluster cannot run here)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import verify_transcript as tx
from labkit import settings as settings_mod
from labkit.verify import cluster
from labkit.verify.model import PASSED, Lab

pytestmark = pytest.mark.t1
TOKEN = "abcdef.0123456789abcdef"


def routes() -> dict:
    snap = tx.snapshot()
    pod_list = {ns: {"kind": "PodList", "apiVersion": "v1", "items": pods} for ns, pods in snap.pods.items()}
    return {
        "/version": snap.version,
        "/api/v1/nodes": {"kind": "NodeList", "apiVersion": "v1", "items": snap.nodes},
        "/api/v1/namespaces/kube-system/pods": pod_list["kube-system"],
        "/api/v1/namespaces/default/pods": pod_list["default"],
        "/apis/apps/v1/namespaces/default/deployments/can-inventory": snap.deployment,
        "/api/v1/namespaces/default/services/inv": snap.service,
        "/api/v1/namespaces/default/endpoints/inv": snap.endpoints,
        "/api/v1/namespaces/kube-system/services/kube-dns": snap.dns_service,
    }


class ApiServer:
    def __init__(self, answers: dict):
        self.answers, self.seen = answers, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0].rstrip("/") or "/"  # the client asks for /version/
                outer.seen.append(path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.reply(401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401})
                if path not in outer.answers:
                    return self.reply(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
                self.reply(200, outer.answers[path])

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def lab_settings(repo, tmp_path):
    return settings_mod.Settings(root=tmp_path, data=settings_mod.load(repo, {}).data)


@pytest.fixture
def lab(lab_settings):
    return Lab.from_settings(lab_settings)


def write_kubeconfig(s, server: str, token: str = TOKEN) -> None:
    from labkit.fsutil import write_private

    write_private(s.state_dir / "kubeconfig", json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
        "users": [{"name": "admin", "user": {"token": token}}]}))


@pytest.fixture
def api():
    server = ApiServer(routes())
    yield server
    server.close()


def test_fetch_reads_every_object_the_checks_use(lab_settings, lab, api):
    write_kubeconfig(lab_settings, api.url)
    snap = cluster.fetch(lab_settings, lab)
    want = tx.snapshot()
    assert snap.problem is None
    assert (snap.version, snap.nodes, snap.pods) == (want.version, want.nodes, want.pods)
    assert (snap.deployment, snap.service, snap.endpoints, snap.dns_service) == \
        (want.deployment, want.service, want.endpoints, want.dns_service)
    assert set(api.seen) == set(routes())
    assert cluster.api_reachable(lab, snap).status == PASSED


def test_missing_objects_are_none_not_errors(lab_settings, lab, api):
    for path in ("/apis/apps/v1/namespaces/default/deployments/can-inventory", "/api/v1/namespaces/default/services/inv"):
        del api.answers[path]
    write_kubeconfig(lab_settings, api.url)
    snap = cluster.fetch(lab_settings, lab)
    assert snap.problem is None and snap.deployment is None and snap.service is None
    assert cluster.service_ip(lab, snap).hint.key == "svc-missing"


def test_rejected_credentials(lab_settings, lab, api):
    write_kubeconfig(lab_settings, api.url, token="from-an-earlier-cluster")
    snap = cluster.fetch(lab_settings, lab)
    assert snap.problem[0] == "api-auth"
    assert cluster.api_reachable(lab, snap).hint.fix == "invoke cluster.init (it exports a fresh .labkit/kubeconfig)"


def test_nothing_listening(lab_settings, lab, api):
    url = api.url
    api.close()  # the port is free again: connection refused, as with a stopped VM's API server
    write_kubeconfig(lab_settings, url)
    snap = cluster.fetch(lab_settings, lab, timeout=2)
    assert snap.problem[0] == "api-unreachable"
    out = cluster.api_reachable(lab, snap)
    assert out.hint.fix == "invoke vm.up, then invoke cluster.init" and "127.0.0.1" in out.hint.cause


def test_no_kubeconfig(lab_settings, lab):
    snap = cluster.fetch(lab_settings, lab)
    assert snap.problem == ("no-kubeconfig", {"path": lab_settings.state_dir / "kubeconfig"})


def test_unusable_kubeconfig(lab_settings, lab):
    (lab_settings.state_dir).mkdir(parents=True, exist_ok=True)
    (lab_settings.state_dir / "kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: [\n")
    out = cluster.api_reachable(lab, cluster.fetch(lab_settings, lab))
    assert out.hint.key == "kubeconfig-bad" and out.hint.fix == "invoke cluster.init (it exports it again)"
