"""verify's API reader through the official kubernetes client, against a real HTTP server on loopback
that answers the lab transcript's objects at the Kubernetes API's paths (a 1.15 cluster cannot run here)."""
from __future__ import annotations

import pytest

from tests import verify_transcript as tx
from tests.kube_http import JsonHandler, Loopback, write_kubeconfig
from labkit import settings as settings_mod
from labkit.checks import PASS
from labkit.verify import from_api
from labkit.verify.checks import s3, s8
from labkit.verify.model import Lab

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
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns": snap.coredns,
    }


class ApiServer(Loopback):
    def __init__(self, answers: dict):
        self.answers, self.seen = answers, []
        outer = self

        class Handler(JsonHandler):
            def do_GET(self):
                path = self.path.split("?")[0].rstrip("/") or "/"  # the client asks for /version/
                outer.seen.append(path)
                if not self.authorized(TOKEN):
                    return
                if path not in outer.answers:
                    return self.status(404, "NotFound")
                self.reply(200, outer.answers[path])

        super().__init__(Handler)


@pytest.fixture
def lab_settings(repo, tmp_path):
    return settings_mod.Settings(root=tmp_path, data=settings_mod.load(repo, {}).data)


@pytest.fixture
def lab(lab_settings):
    return Lab.from_settings(lab_settings)


@pytest.fixture
def api():
    server = ApiServer(routes())
    yield server
    server.close()


def test_fetch_reads_every_object_the_checks_use(lab_settings, lab, api):
    write_kubeconfig(lab_settings.state_dir / "kubeconfig", api.url, TOKEN)
    snap = from_api.fetch(lab_settings, lab)
    want = tx.snapshot()
    assert snap.problem is None
    assert (snap.version, snap.nodes, snap.pods) == (want.version, want.nodes, want.pods)
    assert (snap.deployment, snap.service, snap.endpoints, snap.dns_service, snap.coredns) == \
        (want.deployment, want.service, want.endpoints, want.dns_service, want.coredns)
    assert set(api.seen) == set(routes())
    assert s3.api_reachable(lab, snap).status == PASS


def test_missing_objects_are_none_not_errors(lab_settings, lab, api):
    for path in ("/apis/apps/v1/namespaces/default/deployments/can-inventory", "/api/v1/namespaces/default/services/inv"):
        del api.answers[path]
    write_kubeconfig(lab_settings.state_dir / "kubeconfig", api.url, TOKEN)
    snap = from_api.fetch(lab_settings, lab)
    assert snap.problem is None and snap.deployment is None and snap.service is None
    assert s8.service_ip(lab, snap).key == "svc-missing"


def test_rejected_credentials(lab_settings, lab, api):
    write_kubeconfig(lab_settings.state_dir / "kubeconfig", api.url, "from-an-earlier-cluster")
    snap = from_api.fetch(lab_settings, lab)
    assert snap.problem[0] == "api-auth"
    assert s3.api_reachable(lab, snap).fix == "invoke cluster.init (it exports a fresh .labkit/kubeconfig)"


def test_nothing_listening(lab_settings, lab, api):
    url = api.url
    api.close()  # the port is free again: connection refused, as with a stopped VM's API server
    write_kubeconfig(lab_settings.state_dir / "kubeconfig", url, TOKEN)
    snap = from_api.fetch(lab_settings, lab, timeout=2)
    assert snap.problem[0] == "api-unreachable"
    out = s3.api_reachable(lab, snap)
    assert out.fix == "invoke vm.up, then invoke cluster.init" and "127.0.0.1" in out.cause


def test_no_kubeconfig(lab_settings, lab):
    snap = from_api.fetch(lab_settings, lab)
    assert snap.problem == ("no-kubeconfig", {"path": lab_settings.state_dir / "kubeconfig"})


def test_unusable_kubeconfig(lab_settings, lab):
    (lab_settings.state_dir).mkdir(parents=True, exist_ok=True)
    (lab_settings.state_dir / "kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: [\n")
    out = s3.api_reachable(lab, from_api.fetch(lab_settings, lab))
    assert out.key == "kubeconfig-bad" and out.fix == "invoke cluster.init (it exports it again)"
