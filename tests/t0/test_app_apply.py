"""Create-or-update through the real kubernetes client, against a loopback stand-in for the API server."""
from __future__ import annotations

import pytest

from labkit import kube
from labkit.kube import errors as kube_errors
from labkit import settings as settings_mod
from labkit.app import apply as apply_mod
from labkit.app import build as build_mod
from labkit.app import objects
from labkit.errors import LabkitError
from tests import dryrun
from tests.app_helpers import copy_project, invoke
from tests.app_kube_fake import FakeApiServer


@pytest.fixture
def fake():
    server = FakeApiServer()
    yield server
    server.close()


@pytest.fixture
def project(tmp_path, fake):
    root = copy_project(tmp_path / "project")
    fake.write_kubeconfig(root / ".labkit" / "kubeconfig")
    return root


@pytest.fixture
def lab(project):
    s = settings_mod.load(project, {})
    objs = objects.load(s, build_mod.images(s), build_mod.context_digest(s))
    return s, apply_mod.Cluster(kube.Api(s)), objs


def apply_all(cluster, objs):
    return {objects.ref(o): apply_mod.apply(cluster, o, lambda k, n: apply_mod.wait_gone(cluster, k, n, 10, print, 0.01))
            for o in objs}


def test_first_apply_creates_each_object_with_exactly_the_manifests(lab, fake):
    _s, cluster, objs = lab
    assert apply_all(cluster, objs) == {
        "service/inv": "created", "deployment.apps/can-inventory": "created", "pod/client": "created", "pod/web": "created"}
    posts = [r for r in fake.requests if r["method"] == "POST"]
    assert [(r["path"], r["body"]) for r in posts] == [
        ("/api/v1/namespaces/default/services", objs[0]),
        ("/apis/apps/v1/namespaces/default/deployments", objs[1]),
        ("/api/v1/namespaces/default/pods", objs[2]),
        ("/api/v1/namespaces/default/pods", objs[3])]
    assert {r["auth"] for r in fake.requests} == {"Bearer not-a-secret"}  # the kubeconfig's credentials


def test_second_apply_changes_nothing_and_says_unchanged(lab, fake):
    _s, cluster, objs = lab
    apply_all(cluster, objs)
    before = {k: o["metadata"]["resourceVersion"] for k, o in fake.store.items()}
    fake.requests.clear()
    assert set(apply_all(cluster, objs).values()) == {"unchanged"}
    patches = [r for r in fake.requests if r["method"] == "PATCH"]
    assert len(patches) == 4 and not [r for r in fake.requests if r["method"] in ("POST", "DELETE")]
    assert {r["content_type"] for r in patches} == {"application/strategic-merge-patch+json"}
    assert {k: o["metadata"]["resourceVersion"] for k, o in fake.store.items()} == before


def test_a_changed_deployment_is_configured_in_place(lab, fake):
    _s, cluster, objs = lab
    apply_all(cluster, objs)
    uid = fake.store[("deployments", "can-inventory")]["metadata"]["uid"]
    objs[1]["spec"]["template"]["metadata"]["annotations"][objects.CONTEXT_ANNOTATION] = "0123456789abcdef"
    assert apply_all(cluster, objs)["deployment.apps/can-inventory"] == "configured"
    live = fake.store[("deployments", "can-inventory")]
    assert live["metadata"]["uid"] == uid and live["metadata"]["generation"] == 2
    assert live["spec"]["template"]["metadata"]["annotations"][objects.CONTEXT_ANNOTATION] == "0123456789abcdef"


def test_a_pod_whose_spec_cannot_change_is_replaced(lab, fake):
    _s, cluster, objs = lab
    apply_all(cluster, objs)
    client = next(o for o in objs if o["metadata"]["name"] == "client")
    client["spec"]["containers"][0]["command"] = ["sh", "-i"]
    fake.requests.clear()
    assert apply_all(cluster, objs)["pod/client"] == "replaced"
    calls = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in fake.requests if r["path"].endswith("/client")
             or (r["method"] == "POST" and r["body"]["metadata"]["name"] == "client")]
    # patch refused (422), delete, wait while Terminating, create anew
    assert calls[:3] == [("GET", "client"), ("PATCH", "client"), ("DELETE", "client")]
    assert calls[-1] == ("POST", "pods") and calls.count(("GET", "client")) >= 3
    assert fake.store[("pods", "client")]["spec"]["containers"][0]["command"] == ["sh", "-i"]


def test_an_object_still_terminating_is_waited_for_then_created(lab, fake):
    _s, cluster, objs = lab
    apply_all(cluster, objs)
    fake.delete("pods", "web")  # as if app.delete had just run
    assert apply_all(cluster, objs)["pod/web"] == "created"
    assert "deletionTimestamp" not in fake.store[("pods", "web")]["metadata"]


def test_a_refusal_is_one_line_with_the_servers_message(lab, fake):
    _s, cluster, objs = lab
    fake.refuse[("services", "inv")] = (422, "Invalid", 'Service "inv" is invalid: spec.ports[0].port: Invalid value: 0')
    with pytest.raises(LabkitError) as err:
        apply_mod.apply(cluster, objs[0], lambda k, n: None)
    assert err.value.line() == (
        'labkit: the API server refused service/inv: Service "inv" is invalid: spec.ports[0].port: Invalid value: 0. '
        "Fix: fix the manifest in manifests/ (invoke app.deploy --dry-run shows what is sent)")


def test_an_unreachable_api_server_is_one_line(lab, fake):
    _s, cluster, objs = lab
    fake.close()
    with pytest.raises(LabkitError) as err:
        cluster.get("Service", "inv")
    line = err.value.line()
    assert line == (f"labkit: cannot reach the API server at {fake.url} ([Errno 111] Connection refused). "
                    f"Fix: {kube_errors.START}")
    assert "invoke vm.up, then invoke cluster.init" in kube_errors.START


def test_app_delete_removes_everything_waits_and_is_idempotent(project, lab, fake):
    _s, cluster, objs = lab
    apply_all(cluster, objs)
    fake.linger = 1  # each deleted pod is still there, Terminating, on the next read
    fake.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "can-inventory-756c87dc9f-b45ns",
              "labels": {"app": "inv", "pod-template-hash": "756c87dc9f"}}, "spec": {"containers": []}})
    dry = invoke(project, "app.delete", "--dry-run")
    first = invoke(project, "app.delete")
    assert first.returncode == 0, first.stderr
    assert dryrun.planned(dry.stdout) == dryrun.ran(first.stdout) == ["Deleting the lab's objects"]
    for name in ("pod/web", "pod/client", "deployment.apps/can-inventory", "service/inv"):
        assert f"{name} deleted" in first.stdout
    assert "waiting for pod/web to terminate" in first.stdout
    assert fake.store == {}
    deletes = [r for r in fake.requests if r["method"] == "DELETE"]
    assert {r["query"].get("propagationPolicy", [""])[0] for r in deletes} == {"Background"}
    again = invoke(project, "app.delete")
    assert again.returncode == 0 and "(nothing to delete)" in again.stdout


def test_app_delete_dry_run_touches_nothing(project, lab, fake):
    _s, cluster, objs = lab
    apply_all(cluster, objs)
    fake.requests.clear()
    out = invoke(project, "app.delete", "--dry-run")
    assert out.returncode == 0
    assert dryrun.described(out.stdout, "Deleting the lab's objects").startswith(
        "delete pod/web, pod/client, deployment.apps/can-inventory, service/inv (the image stays in the VM)")
    assert fake.requests == [] and len(fake.store) == 4


# Status bodies as a 1.15 API server sends them: a stale kubeconfig after a manual kubeadm re-init (its
# client certificate signed by the old CA), RBAC refusing a user, etcd not answering.
UNAUTHORIZED = (401, "Unauthorized", "Unauthorized")
FORBIDDEN = (403, "Forbidden", 'services "inv" is forbidden: User "kubernetes-admin" cannot get resource "services" '
                               'in API group "" in the namespace "default"')
ETCD_DOWN = (500, "InternalError", "Internal error occurred: etcdserver: request timed out")


@pytest.mark.parametrize("outage, line", [
    (UNAUTHORIZED, "refused labkit's kubeconfig (401). Fix: run invoke cluster.init again to re-export it"),
    (ETCD_DOWN, "answered 500 InternalError: Internal error occurred: etcdserver: request timed out. "
                "Fix: run invoke cluster.status; if it persists, invoke cluster.reset then cluster.init"),
])
def test_app_delete_turns_an_api_refusal_into_one_line(project, fake, outage, line):
    fake.outage = outage
    out = invoke(project, "app.delete")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"labkit: the API server at {fake.url} {line}"
    assert fake.requests and all(r.get("outage") for r in fake.requests)


def test_credentials_or_server_trouble_while_applying_is_not_blamed_on_the_manifest(lab, fake):
    _s, cluster, objs = lab
    for outage, says in ((FORBIDDEN, "refused labkit's kubeconfig (403)"), (ETCD_DOWN, "answered 500 InternalError")):
        fake.outage = outage
        with pytest.raises(LabkitError) as err:
            apply_mod.apply(cluster, objs[0], lambda k, n: None)
        assert says in err.value.message and "manifest" not in err.value.line()


def test_waiting_on_a_refusing_api_server_stops_with_one_line(lab, fake):
    from labkit.app import rollout

    _s, cluster, objs = lab
    fake.outage = UNAUTHORIZED
    with pytest.raises(LabkitError) as err:
        rollout.states(cluster, objs)
    assert "refused labkit's kubeconfig (401)" in err.value.message


def test_a_kubeconfig_from_before_a_re_init_is_one_line_not_unreachable(tmp_path, lab, fake):
    # kubeadm init makes a new CA: the old kubeconfig's CA no longer verifies the API server's certificate.
    from tests.kube_http import self_signed, serve_tls, write_kubeconfig

    s, _cluster, objs = lab
    new_cert, new_key = self_signed(tmp_path, "kubernetes-new")
    old_ca, _ = self_signed(tmp_path, "kubernetes-old")
    url = serve_tls(fake._loopback, new_cert, new_key)
    write_kubeconfig(s.state_dir / "kubeconfig", url, "not-a-secret", ca=old_ca)
    with pytest.raises(LabkitError) as err:
        apply_mod.Cluster(kube.Api(s)).get("Service", "inv")
    assert err.value.line() == (f"labkit: the API server at {url} has a certificate labkit's kubeconfig does not trust "
                                "(the cluster was initialized again since it was exported). "
                                "Fix: run invoke cluster.init again to re-export it")
    write_kubeconfig(s.state_dir / "kubeconfig", url, "not-a-secret", ca=new_cert)  # the re-exported one works
    assert apply_mod.Cluster(kube.Api(s)).get("Service", "inv") is None
