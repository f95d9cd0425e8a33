"""manifests/: valid for Kubernetes 1.15, faithful to the lab's text, in step with settings.yaml."""
from __future__ import annotations

import re

import pytest
import yaml

from labkit import settings as settings_mod
from labkit.app import build as build_mod
from labkit.app import objects
from tests.support.env import REPO

# kubernetes-validate 1.24.1 (the last with the 1.15 schemas) uses APIs its dependencies deprecated since.
pytestmark = [pytest.mark.t1, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MANIFESTS = REPO / "manifests"
FILES = sorted(p.name for p in MANIFESTS.glob("*.yaml"))


@pytest.fixture(scope="module")
def lab():
    return settings_mod.load(REPO, {})


def doc(name: str) -> dict:
    docs = [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d is not None]
    assert len(docs) == 1, f"{name} should hold one object"
    return docs[0]


def test_the_lab_has_its_four_manifests():
    assert FILES == ["client.yaml", "deploy.yaml", "service.yaml", "web.yaml"]


@pytest.mark.parametrize("name", FILES)
def test_valid_for_kubernetes_1_15_strictly(name, lab):
    import kubernetes_validate

    version = lab.versions["kubernetes"].lstrip("v")  # 1.15.12
    try:
        used = kubernetes_validate.validate(doc(name), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {str(exc).splitlines()[0]}")
    assert used == "1.15"  # the 1.15 schemas really were used, not a fallback


def test_strict_validation_catches_a_misspelt_field(lab):
    import kubernetes_validate

    broken = doc("deploy.yaml")
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.15.12", strict=True)


def test_deployment_carries_the_labs_values(lab):
    d = doc("deploy.yaml")
    assert (d["apiVersion"], d["kind"]) == ("apps/v1", "Deployment")
    assert d["metadata"]["name"] == "can-inventory"
    assert d["metadata"]["labels"] == {"app": "inv"}
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["selector"] == {"matchLabels": {"app": "inv"}}
    assert d["spec"]["template"]["metadata"]["labels"] == {"app": "inv"}
    [c] = d["spec"]["template"]["spec"]["containers"]
    assert c["name"] == "inv"
    assert c["image"] == "trash-can/inv:0.1" == build_mod.images(lab)["inv"]
    assert c["imagePullPolicy"] == "Never"
    assert c["ports"] == [{"containerPort": 8080}]
    # The additions serve the lab: ready only once /healthz answers on the app's port, and non-root.
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert set(c["resources"]) == {"requests"}
    assert c["securityContext"]["runAsNonRoot"] is True


def test_service_carries_the_labs_values():
    s = doc("service.yaml")
    assert (s["apiVersion"], s["kind"]) == ("v1", "Service")
    assert s["metadata"] == {"name": "inv"}
    assert s["spec"] == {"selector": {"app": "inv"}, "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}]}


def test_web_and_client_pods_are_the_labs_kubectl_run_pods():
    web, client = doc("web.yaml"), doc("client.yaml")
    assert (web["kind"], web["metadata"]["name"], web["metadata"]["labels"]) == ("Pod", "web", {"run": "web"})
    assert (client["kind"], client["metadata"]["name"], client["metadata"]["labels"]) == ("Pod", "client", {"run": "client"})
    [w] = web["spec"]["containers"]
    assert w["ports"] == [{"containerPort": 80}]
    [c] = client["spec"]["containers"]
    # kept running with a shell on stdin, so `kubectl attach client -it` works as in the lab
    assert (c["command"], c["stdin"], c["tty"]) == (["sh"], True, True)
    assert "stdinOnce" not in c
    # verify's probes in it (wget, nslookup, cat) need no root, so it runs as busybox's nobody
    assert c["securityContext"] == {"runAsUser": 65534, "runAsNonRoot": True, "allowPrivilegeEscalation": False}


@pytest.mark.parametrize("name", FILES)
def test_images_are_pinned_offline_safe_and_equal_to_settings(name, lab):
    names = build_mod.images(lab)
    d = doc(name)
    for c in objects.containers(d):
        key = objects.IMAGE_KEYS[(d["kind"], d["metadata"]["name"], c["name"])]
        assert c["image"] == names[key], f"{name}: {c['image']} but settings images.{key} is {names[key]}"
        assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+", c["image"]) and not c["image"].endswith(":latest")
        assert c["imagePullPolicy"] in ("Never", "IfNotPresent")


def test_every_container_has_an_image_setting(lab):
    # objects.load refuses a container it cannot map to settings; loading the real files must work.
    objs = objects.load(lab, build_mod.images(lab))
    assert sorted(objects.ref(o) for o in objs) == [
        "deployment.apps/can-inventory", "pod/client", "pod/web", "service/inv"]


def test_objects_sent_are_valid_too(lab):
    # What app.deploy sends (images from settings, the context annotation) still validates.
    import kubernetes_validate

    for obj in objects.load(lab, build_mod.images(lab), "0" * 64):
        kubernetes_validate.validate(obj, "1.15.12", strict=True)
