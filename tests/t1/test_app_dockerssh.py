"""app.build and app.deploy end to end over a real SSH hop: OpenSSH's sshd on loopback in front of a real dockerd.

This stands in for the VM: sshd runs `docker system dial-stdio` for each connection the docker SDK
opens, exactly as in the VM, and the test dockerd listens only on its private unix socket, so
every answer the build gets went through SSH. The SSH facts are the ones app.build would cache from
`vagrant ssh-config` (.labkit/<node>.ssh.json), so the task runs unchanged.
"""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import settings as settings_mod
from labkit.app import build as build_mod
from tests.support import dryrun
from tests.support.env import REPO, free_port, stop_process
from tests.support.sshd import start_sshd

pytestmark = pytest.mark.t1

NODE = "ubuntu"


@pytest.fixture(scope="module")
def sshd(dockerd, tmp_path_factory):
    """sshd on 127.0.0.1:<port>, key login for this user, DOCKER_HOST set to the test dockerd."""
    proc, facts = start_sshd(tmp_path_factory.mktemp("sshd"), (f"SetEnv DOCKER_HOST={dockerd.url}",))
    yield facts
    stop_process(proc)


@pytest.fixture(scope="module")
def project(tmp_path_factory, sshd):
    """A copy of the project whose cached SSH facts for the VM point at the test sshd."""
    root = tmp_path_factory.mktemp("project")
    for name in ("settings.yaml", "tasks.py"):
        shutil.copy(REPO / name, root / name)
    for name in ("provision", "inv", "manifests"):
        shutil.copytree(REPO / name, root / name)
    facts = {k: sshd[k] for k in ("host", "port", "user", "key_file")}
    (root / ".labkit").mkdir()
    (root / ".labkit" / f"{NODE}.ssh.json").write_text(json.dumps(facts))
    return root


@pytest.fixture(scope="module")
def names():
    return build_mod.images(settings_mod.load(REPO, {}))


def ensure_base(dockerd, stand_in_image, names) -> None:
    """The stand-in base image under settings' name, imported only when missing (an import takes seconds)."""
    import docker

    client = dockerd.client()
    try:
        client.images.get(names["inv_base"])
    except docker.errors.ImageNotFound:
        stand_in_image(names["inv_base"])
    finally:
        client.close()


def invoke(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKIT_", "DOCKER_"))}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)


def test_docker_client_reaches_the_daemon_only_through_ssh(project, dockerd):
    from concurrent.futures import ThreadPoolExecutor

    from labkit.app import dockerssh
    from labkit.backends import get_backend

    s = settings_mod.load(project, {})
    ssh = get_backend(f"node:{NODE}", s)  # facts from the cache: Vagrant is not asked
    try:
        with dockerssh.docker_client(ssh, NODE) as client:
            assert client.api.base_url.startswith("http://127.0.0.1:")
            direct = dockerd.client()
            assert client.info()["ID"] == direct.info()["ID"]  # the same daemon
            direct.close()
            with ThreadPoolExecutor(max_workers=6) as pool:  # each request: its own connection and channel
                assert all(pool.map(lambda _: client.ping(), range(12)))
    finally:
        ssh.close()


def test_app_build_builds_in_the_remote_daemon_then_skips(project, dockerd, stand_in_image, names):
    ensure_base(dockerd, stand_in_image, names)
    first = invoke(project, "app.build")
    print(first.stdout)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Building {names['inv']} in {NODE}" in first.stdout
    assert "not built yet: FROM " + names["inv_base"] in first.stdout
    assert "Step 1/" in first.stdout and "Successfully tagged " + names["inv"] in first.stdout  # streamed
    digest = build_mod.context_digest(settings_mod.load(project, {}))
    client = dockerd.client()
    image = client.images.get(names["inv"])
    assert image.labels[build_mod.CONTEXT_LABEL] == digest
    assert image.attrs["Config"]["User"] == "10001:10001"

    again = invoke(project, "app.build")
    assert again.returncode == 0, again.stderr
    assert "(up to date)" in again.stdout and "Step 1/" not in again.stdout
    assert client.images.get(names["inv"]).id == image.id

    (project / "inv" / "app.py").write_text((project / "inv" / "app.py").read_text() + "\n# edited\n")
    changed = invoke(project, "app.build")
    assert changed.returncode == 0, changed.stderr
    assert "inv/ changed" in changed.stdout
    rebuilt = client.images.get(names["inv"])
    assert rebuilt.id != image.id
    assert rebuilt.labels[build_mod.CONTEXT_LABEL] == build_mod.context_digest(settings_mod.load(project, {}))
    client.close()


def test_missing_base_image_is_one_line_pointing_at_the_bundle(project, dockerd, stand_in_image, names):
    ensure_base(dockerd, stand_in_image, names)
    client = dockerd.client()
    client.images.remove(names["inv_base"])  # untag: the bundle's base image is not loaded
    try:
        out = invoke(project, "app.build", "--force")
    finally:
        stand_in_image(names["inv_base"])
        client.close()
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"labkit: the base image {names['inv_base']} is not loaded in {NODE}'s Docker (the build would try to pull it). "
        "Fix: it comes from the bundle: run invoke bundle.fetch, then invoke vm.provision to load it")


def test_unreachable_vm_is_one_line(tmp_path, project):
    broken = tmp_path / "project"
    shutil.copytree(project, broken)
    facts = json.loads((broken / ".labkit" / f"{NODE}.ssh.json").read_text())
    facts["port"] = free_port()  # nothing listens there
    (broken / ".labkit" / f"{NODE}.ssh.json").write_text(json.dumps(facts))
    out = invoke(broken, "app.build")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f"labkit: cannot reach {NODE} over SSH") and line.endswith("Fix: start the VM: invoke vm.up")


# --- app.deploy end to end: the build through sshd, the objects to a stand-in API server --------

def kubelet(broken_images=()):
    """after_write hook for the API stand-in: what the Deployment controller and kubelet would do."""
    import hashlib

    def settle(fake):
        def run(pod):
            image = pod["spec"]["containers"][0]["image"]
            ok = image not in broken_images
            state = {"running": {"startedAt": "2019-07-12T09:44:05Z"}} if ok else {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
            pod["spec"]["nodeName"] = "ubuntu"
            pod["status"] = {"phase": "Running" if ok else "Pending", "hostIP": "192.168.56.10", "podIP": "10.32.0.6",
                             "containerStatuses": [{"name": pod["spec"]["containers"][0]["name"], "image": image,
                                                    "ready": ok, "restartCount": 0, "state": state}]}
            return ok

        for (plural, name), obj in list(fake.store.items()):
            if plural == "pods" and not obj["status"].get("containerStatuses"):
                run(obj)
            if plural != "deployments":
                continue
            template = obj["spec"]["template"]
            h = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
            for key in [k for k in fake.store if k[0] == "pods" and k[1].startswith(name + "-")
                        and not k[1].startswith(f"{name}-{h}-")]:
                del fake.store[key]  # the old ReplicaSet's pods
            ready = 0
            for i in range(obj["spec"]["replicas"]):
                pod_name = f"{name}-{h}-{i}"
                if ("pods", pod_name) not in fake.store:
                    pod = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": pod_name, "labels": {**template["metadata"]["labels"], "pod-template-hash": h}},
                           "spec": json.loads(json.dumps(template["spec"])), "status": {}}
                    fake.store[("pods", pod_name)] = fake.stamp("pods", pod, fresh=True)
                    run(pod)
                ready += fake.store[("pods", pod_name)]["status"]["containerStatuses"][0]["ready"]
            want = obj["spec"]["replicas"]
            obj["status"] = {"observedGeneration": obj["metadata"]["generation"], "replicas": want,
                             "updatedReplicas": want, "readyReplicas": ready, "availableReplicas": ready}
    return settle


@pytest.fixture
def api():
    from tests.support.apiserver import FakeApiServer

    fake = FakeApiServer(linger=0)
    yield fake
    fake.close()


@pytest.fixture
def deploy_project(tmp_path, project, api):
    root = tmp_path / "deploy-project"
    shutil.copytree(project, root)
    shutil.rmtree(root / "inv")
    shutil.copytree(REPO / "inv", root / "inv")
    api.write_kubeconfig(root / ".labkit" / "kubeconfig")
    return root


def test_app_deploy_builds_applies_waits_and_rolls_on_change(deploy_project, api, dockerd, stand_in_image, names):
    ensure_base(dockerd, stand_in_image, names)
    api.after_write = kubelet()
    dry = invoke(deploy_project, "app.deploy", "--dry-run")
    first = invoke(deploy_project, "app.deploy", "--timeout", "20")
    assert first.returncode == 0, first.stdout + first.stderr
    assert dryrun.planned(dry.stdout) == dryrun.ran(first.stdout)  # the dry-run lists exactly the steps run
    for line in ("service/inv created", "deployment.apps/can-inventory created", "pod/client created", "pod/web created",
                 "deployment.apps/can-inventory: 2/2 available", "pod/web: Running", "pod/client: Running"):
        assert line in first.stdout
    assert f"Building {names['inv']} in {NODE}" in first.stdout
    digest = build_mod.context_digest(settings_mod.load(deploy_project, {}))
    annotations = api.store[("deployments", "can-inventory")]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"labkit.io/inv-context": digest[:16]}
    pods = sorted(n for p, n in api.store if p == "pods" and n.startswith("can-inventory-"))

    again = invoke(deploy_project, "app.deploy", "--timeout", "20")
    assert again.returncode == 0, again.stderr
    assert "(up to date)" in again.stdout and "Applying manifests/ (all unchanged)" in again.stdout
    assert sorted(n for p, n in api.store if p == "pods" and n.startswith("can-inventory-")) == pods

    app = deploy_project / "inv" / "app.py"
    app.write_text(app.read_text() + "\n# a new version of the service\n")
    changed = invoke(deploy_project, "app.deploy", "--timeout", "20")
    assert changed.returncode == 0, changed.stderr
    assert "inv/ changed" in changed.stdout and "deployment.apps/can-inventory configured" in changed.stdout
    new_pods = sorted(n for p, n in api.store if p == "pods" and n.startswith("can-inventory-"))
    assert len(new_pods) == 2 and not set(new_pods) & set(pods)  # rolled over to the new image


def test_app_deploy_timeout_shows_pods_events_and_the_hint(deploy_project, api, dockerd, stand_in_image, names):
    ensure_base(dockerd, stand_in_image, names)
    api.after_write = kubelet(broken_images={names["web"]})
    out = invoke(deploy_project, "app.deploy", "--timeout", "3")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert re.search(r"^web\s+Pending \(ImagePullBackOff\)\s+0/1\s+0\s+ubuntu$", out.stdout, re.M), out.stdout
    assert out.stderr.strip().splitlines()[-1] == (
        f"labkit: not ready after 3s: pod/web (Pending (ImagePullBackOff)). the VM has no image {names['web']} "
        "(ImagePullBackOff) and cannot download it offline. "
        "Fix: it comes from the bundle: run invoke bundle.fetch, then invoke vm.provision to load it")
