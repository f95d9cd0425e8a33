"""labkit.kube.Api (the API door) through the real official client, against an HTTP server on loopback that
answers like a Kubernetes 1.15 API server (the JSON shapes of tests/support/cluster.py)."""
from __future__ import annotations

import json
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

from labkit import settings as settings_mod
from labkit.kube import Api as ClusterApi
from labkit.kube.errors import UNTRUSTED, Unreachable, Untrusted
from labkit.errors import LabkitError
from tests.support.kubeapi import JsonHandler, Loopback, self_signed, write_kubeconfig
from tests.support import cluster as objs

pytestmark = pytest.mark.t1

REPO = Path(__file__).resolve().parents[2]
TOKEN = "labkit-test-token"


class FakeApiServer(JsonHandler):
    """GET nodes/pods/events/services/daemonsets and PATCH nodes, like the API server, over plain HTTP."""

    nodes, pods = objs.after_init()
    patches: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if not self.authorized(TOKEN):
            return
        path = self.path.split("?")[0]
        if path == "/api/v1/nodes":
            return self.reply(200, {"kind": "NodeList", "apiVersion": "v1", "items": self.nodes})
        if path == "/api/v1/namespaces/kube-system/pods":
            selector = dict(p.split("=") for p in self.path.split("labelSelector=")[1].split("&")[0].replace("%3D", "=").split(",")) \
                if "labelSelector=" in self.path else {}
            items = [p for p in self.pods if all(p["metadata"]["labels"].get(k) == v for k, v in selector.items())]
            return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "items": items})
        if path == "/api/v1/namespaces/kube-system/events":
            return self.reply(200, {"kind": "EventList", "apiVersion": "v1", "items": objs.FAILED_SCHEDULING})
        if path == "/api/v1/namespaces/kube-system/services/kube-dns":
            return self.reply(200, {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "kube-dns"},
                                    "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 53, "protocol": "UDP"}]}})
        self.status(404, "NotFound")

    def do_PATCH(self):  # noqa: N802
        if not self.authorized(TOKEN):
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).patches.append((self.path, self.headers.get("Content-Type"), body))
        node = next(n for n in self.nodes if self.path.endswith("/" + n["metadata"]["name"]))
        self.reply(200, node)


@pytest.fixture
def api_server():
    FakeApiServer.patches = []
    server = Loopback(FakeApiServer)
    yield server.url
    server.close()


def project(tmp_path: Path, server: str, token: str = TOKEN):
    shutil.copy(REPO / "settings.yaml", tmp_path / "settings.yaml")
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    s = settings_mod.load(tmp_path, {})
    write_kubeconfig(s.state_dir / "kubeconfig", server, token)
    return s


def test_reads_come_back_as_the_servers_json(tmp_path, api_server):
    api = ClusterApi(project(tmp_path, api_server))
    assert [n["metadata"]["name"] for n in api.nodes()] == [objs.NODE]
    assert len(api.pods("kube-system")) == len(FakeApiServer.pods)
    coredns = api.pods("kube-system", "k8s-app=kube-dns")
    assert sorted(p["metadata"]["name"] for p in coredns) == ["coredns-5c98db65d4-jklpz", "coredns-5c98db65d4-vkqkj"]
    assert api.events("kube-system")[0]["reason"] == "FailedScheduling"
    assert api.get("Service", "kube-system", "kube-dns")["spec"]["clusterIP"] == "10.96.0.10"
    assert api.get("DaemonSet", "kube-system", "weave-net") is None  # 404: not installed yet


def test_taints_are_replaced_with_a_json_patch(tmp_path, api_server):
    api = ClusterApi(project(tmp_path, api_server))
    api.set_taints(objs.NODE, [objs.NOT_READY_TAINT])
    [(path, content_type, body)] = FakeApiServer.patches
    assert path == f"/api/v1/nodes/{objs.NODE}"
    assert content_type == "application/json-patch+json"
    assert body == [{"op": "replace", "path": "/spec/taints", "value": [objs.NOT_READY_TAINT]}]


def test_a_refused_kubeconfig_is_one_line_with_the_fix(tmp_path, api_server):
    api = ClusterApi(project(tmp_path, api_server, token="wrong"))
    with pytest.raises(LabkitError) as err:
        api.nodes()
    assert "refused labkit's kubeconfig (401)" in err.value.message and "cluster.init" in err.value.fix


def test_an_unreachable_api_server_is_its_own_error(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = ClusterApi(project(tmp_path, f"http://127.0.0.1:{port}"))
    with pytest.raises(Unreachable) as err:
        api.nodes()
    assert f"cannot reach the API server at http://127.0.0.1:{port} (" in err.value.message
    assert "host-only network" in err.value.fix


@contextmanager
def over_tls(tmp_path, cert, key, ca):
    """The stand-in served over HTTPS with `cert`; yields the settings and the URL, the kubeconfig trusting `ca`."""
    from tests.support.kubeapi import serve_tls

    server = Loopback(FakeApiServer)
    try:
        url = serve_tls(server, cert, key)
        s = project(tmp_path, url)
        write_kubeconfig(s.state_dir / "kubeconfig", url, TOKEN, ca=ca)
        yield s, url
    finally:
        server.close()


def test_a_kubeconfig_from_before_a_re_init_stops_at_once_instead_of_waiting(tmp_path):
    new_cert, new_key = self_signed(tmp_path, "kubernetes-new")
    old_ca, _ = self_signed(tmp_path, "kubernetes-old")
    with over_tls(tmp_path, new_cert, new_key, old_ca) as (s, url):
        with pytest.raises(LabkitError) as err:
            ClusterApi(s).nodes()
        assert not isinstance(err.value, Unreachable)  # waits retry Unreachable; this cannot get better
        assert "does not trust (the cluster was initialized again" in err.value.message
        assert err.value.fix == "run invoke cluster.init again to re-export it"
        write_kubeconfig(s.state_dir / "kubeconfig", url, TOKEN, ca=new_cert)
        assert [n["metadata"]["name"] for n in ClusterApi(s).nodes()] == [objs.NODE]


@pytest.mark.parametrize("valid_from_days, cause, words", [
    (-400, "expired", "has a certificate that has expired (kubeadm's certificates last one year"),
    (30, "not-yet-valid", "has a certificate that is not valid yet (this laptop's clock is behind"),
])
def test_an_expired_or_not_yet_valid_certificate_has_its_own_fix(tmp_path, valid_from_days, cause, words):
    """The API server's certificate is trusted (its CA is in the kubeconfig) but outside its validity dates:
    an old snapshot, or a wrong clock. The real ssl module rejects it; the door says which case it is."""
    cert, key = self_signed(tmp_path, "kubernetes", valid_from_days=valid_from_days)
    with over_tls(tmp_path, cert, key, cert) as (s, _url):
        with pytest.raises(Untrusted) as err:
            ClusterApi(s).nodes()
        assert err.value.cause == cause and words in err.value.message
        assert err.value.fix == UNTRUSTED[cause][1] and "cluster.init" in err.value.fix
