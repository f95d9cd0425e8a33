"""The app collection as a user meets it: help, dry runs, settings, and one-line errors."""
from __future__ import annotations

import shutil

import pytest
import yaml

from tests.support import dryrun
from tests.support.app import copy_project, invoke
from tests.support.env import REPO
from labkit import settings as settings_mod
from labkit.app import build as build_mod
from labkit.app import dockerssh, objects
from labkit.backends import CommandResult
from labkit.errors import LabkitError

TASKS = {"app.build": ["--dry-run", "--force", "--node"], "app.deploy": ["--dry-run", "--timeout"],
         "app.delete": ["--dry-run", "--timeout"]}


@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "project")


def test_the_collection_is_listed():
    out = invoke(REPO, "--list")
    assert out.returncode == 0
    for name in TASKS:
        assert f"  {name} " in out.stdout


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_has_a_docstring_and_help_for_every_option(name):
    out = invoke(REPO, name, "--help")
    assert out.returncode == 0
    text = out.stdout
    assert text.split("Docstring:")[1].split("Options:")[0].strip()
    for option in TASKS[name]:
        line = next(ln for ln in text.splitlines() if option in ln)
        assert len(line.split(option, 1)[1].split(maxsplit=1)) == 2, f"{option} has no help: {line!r}"


def applied(text: str) -> str:
    """The YAML a deploy dry-run shows under its apply step."""
    return dryrun.described(text, "Applying manifests/").split("as this YAML:\n", 1)[1]


def test_deploy_dry_run_prints_exactly_the_objects_it_would_send(project):
    out = invoke(project, "app.deploy", "--dry-run")
    assert out.returncode == 0, out.stderr
    s = settings_mod.load(project, {})
    digest = build_mod.context_digest(s)
    assert dryrun.planned(out.stdout) == ["Building trash-can/inv:0.1 in ubuntu", "Applying manifests/",
                                          "Waiting for deployment.apps/can-inventory, pod/client, pod/web"]
    assert f"digest {digest[:12]}; skipped where an image of the same context exists" in out.stdout
    assert list(yaml.safe_load_all(applied(out.stdout))) == objects.load(s, build_mod.images(s), digest)
    assert not (project / ".labkit").exists()  # nothing was contacted or cached


def test_images_follow_settings_overrides(project):
    env = {"LABKIT_IMAGES__WEB": "nginx:1.17.10", "LABKIT_IMAGES__CLIENT": "busybox:1.31.1"}
    out = invoke(project, "app.deploy", "--dry-run", env=env)
    assert out.returncode == 0, out.stderr
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(applied(out.stdout))}
    assert docs["web"]["spec"]["containers"][0]["image"] == "nginx:1.17.10"
    assert docs["client"]["spec"]["containers"][0]["image"] == "busybox:1.31.1"


def test_build_dry_run_names_base_context_and_digest(project):
    env = {"LABKIT_IMAGES__INV_BASE": "python:3.7.10-alpine3.13"}
    out = invoke(project, "app.build", "--dry-run", env=env)
    assert out.returncode == 0, out.stderr
    assert dryrun.planned(out.stdout) == ["Building trash-can/inv:0.1 in ubuntu"]
    digest = build_mod.context_digest(settings_mod.load(project, env))
    assert dryrun.described(out.stdout, "Building trash-can/inv:0.1 in ubuntu") == (
        f"ubuntu: FROM python:3.7.10-alpine3.13, context {project / 'inv'} (.dockerignore, Dockerfile, app.py), "
        f"digest {digest[:12]}; skipped where an image of the same context exists")


def test_deploy_without_a_cluster_is_one_line_before_any_build(project):
    out = invoke(project, "app.deploy")
    assert out.returncode == 1
    assert out.stderr.strip() == (f"labkit: no kubeconfig at {project / '.labkit' / 'kubeconfig'}. "
                                  "Fix: run invoke cluster.init (it exports one for this laptop)")
    assert "Building" not in out.stdout


def test_a_broken_manifest_is_one_line(project):
    (project / "manifests" / "web.yaml").write_text("kind: Pod\n  name: [web\n")
    out = invoke(project, "app.deploy", "--dry-run")
    assert out.returncode == 1
    assert out.stderr.strip().startswith("labkit: manifests/web.yaml line ")
    assert "Traceback" not in out.stderr


def test_an_unmapped_container_is_refused(project):
    web = yaml.safe_load((project / "manifests" / "web.yaml").read_text())
    web["spec"]["containers"].append({"name": "sidecar", "image": "busybox:1.31.0"})
    (project / "manifests" / "web.yaml").write_text(yaml.safe_dump(web))
    with pytest.raises(LabkitError, match="no image setting for container sidecar of Pod web"):
        s = settings_mod.load(project, {})
        objects.load(s, build_mod.images(s))


# --- the build context digest: what decides "up to date" -----------------------------------

def digest(project, env=None):
    return build_mod.context_digest(settings_mod.load(project, env or {}))


def test_digest_changes_with_the_app_the_dockerfile_and_the_base(project):
    before = digest(project)
    assert digest(project) == before  # stable
    assert digest(project, {"LABKIT_IMAGES__INV_BASE": "python:3.7.10-alpine3.13"}) != before
    (project / "inv" / "Dockerfile").write_text((project / "inv" / "Dockerfile").read_text() + "\n")
    after_dockerfile = digest(project)
    assert after_dockerfile != before
    (project / "inv" / "app.py").write_text((project / "inv" / "app.py").read_text().replace('"0.1"', '"0.2"'))
    assert digest(project) != after_dockerfile


def test_digest_ignores_what_docker_never_receives(project):
    before = digest(project)
    (project / "inv" / "notes.txt").write_text("scratch")
    (project / "inv" / "__pycache__").mkdir()
    (project / "inv" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0\1")
    assert digest(project) == before
    assert build_mod.context_files(project / "inv") == [".dockerignore", "Dockerfile", "app.py"]


def test_a_missing_dockerfile_is_one_line(project):
    shutil.rmtree(project / "inv")
    (project / "inv").mkdir()
    with pytest.raises(LabkitError, match="inv/Dockerfile is missing"):
        digest(project)


# --- what the VM's docker CLI says, turned into a fix --------------------------------------

class FakeSsh:
    """The VM's answer to `docker version`, as labkit.backends.Ssh returns it (a VM cannot run in T0)."""
    user = "vagrant"

    def __init__(self, result: CommandResult):
        self.result = result
        self.commands = []

    def run(self, command, timeout=30, stdin=None):
        self.commands.append(command)
        return self.result


@pytest.mark.parametrize("result, message, fix", [
    (CommandResult(0, "18.09.9\n", "", 0.2), None, None),
    (CommandResult(127, "", "bash: docker: command not found\n", 0.1),
     "Docker is not installed in ubuntu", "provision it: invoke vm.provision --step docker"),
    (CommandResult(1, "", "Got permission denied while trying to connect to the Docker daemon socket at "
                   "unix:///var/run/docker.sock: Get http://%2Fvar%2Frun%2Fdocker.sock/v1.39/version: "
                   "dial unix /var/run/docker.sock: connect: permission denied\n", 0.1),
     "user vagrant may not use the Docker daemon in ubuntu", "the docker provision step adds it to the docker group"),
    (CommandResult(1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n", 0.1),
     "the Docker daemon in ubuntu is not running", "start it: invoke vm.ssh --command 'sudo systemctl restart docker'"),
    (CommandResult(255, "", "ssh to ubuntu failed: [Errno 111] Connection refused", 0.1),
     "cannot reach ubuntu over SSH", "start the VM: invoke vm.up"),
])
def test_docker_in_the_vm_problems_are_named_with_their_fix(result, message, fix):
    ssh = FakeSsh(result)
    if message is None:
        assert dockerssh.check_docker(ssh, "ubuntu") == "18.09.9"
    else:
        with pytest.raises(LabkitError) as err:
            dockerssh.check_docker(ssh, "ubuntu")
        assert err.value.message.startswith(message)
        assert err.value.fix.startswith(fix)
    assert ssh.commands == ["docker version --format '{{.Server.Version}}'"]


@pytest.mark.parametrize("task", ["app.deploy", "app.delete"])
@pytest.mark.parametrize("value", ["abc", "0", "2.5"])
def test_a_bad_timeout_is_one_line_from_the_real_cli(task, value):
    out = invoke(REPO, task, "--dry-run", "--timeout", value)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"labkit: --timeout '{value}' is not a positive whole number of seconds. "
                                  "Fix: give one like --timeout 600")
