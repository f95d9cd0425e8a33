"""app.build in a real VM: the docker SDK over SSH to the VM's Docker, the base image from the test bundle.

`lab_vm` (tests/t2/conftest.py) is a provisioned VM: Docker installed, the bundle's images loaded,
the `vagrant` user in the docker group. It gives `.settings` and `.env` (the environment to run
invoke with).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from labkit.app import build as build_mod
from labkit.backends import get_backend

pytestmark = pytest.mark.t2

PROBE = "import urllib.request as u; r = u.urlopen('http://127.0.0.1:18080/'); print(r.read().decode(), r.headers['X-Served-By'])"


def invoke(lab_vm, *args):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=lab_vm.settings.root, env=lab_vm.env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def vm_ssh(lab_vm):
    s = lab_vm.settings
    ssh = get_backend(f"node:{s.master.name}", s, lab_vm.env)
    yield ssh
    ssh.close()


def test_app_build_builds_in_the_vm_then_skips(lab_vm, vm_ssh):
    s = lab_vm.settings
    names = build_mod.images(s)
    vm_ssh.run(["docker", "rmi", "-f", names["inv"]], timeout=60)  # start from "not built yet"

    first = invoke(lab_vm, "app.build")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert "not built yet: FROM " + names["inv_base"] in first.stdout
    assert "Step 1/" in first.stdout and "Successfully tagged " + names["inv"] in first.stdout

    fmt = '{{index .Config.Labels "io.labkit.context"}} {{.Config.User}}'
    inspect = vm_ssh.run(["docker", "image", "inspect", "--format", fmt, names["inv"]], timeout=60)
    assert inspect.ok, inspect.stderr
    assert inspect.stdout.split() == [build_mod.context_digest(s), "10001:10001"]

    again = invoke(lab_vm, "app.build")
    assert again.returncode == 0, again.stderr
    assert "(up to date)" in again.stdout and "Step 1/" not in again.stdout


def test_the_built_image_serves_the_lab_body_in_the_vm(lab_vm, vm_ssh):
    names = build_mod.images(lab_vm.settings)
    vm_ssh.run(["docker", "rm", "-f", "labkit-t2-inv"], timeout=60)
    run = vm_ssh.run(["docker", "run", "-d", "--name", "labkit-t2-inv", "--network", "host", "-e", "PORT=18080",
                      names["inv"]], timeout=60)
    assert run.ok, run.stderr
    try:
        probe = None
        for _ in range(30):
            probe = vm_ssh.run(["docker", "exec", "labkit-t2-inv", "python3", "-c", PROBE], timeout=30)
            if probe.ok:
                break
            vm_ssh.run(["sleep", "0.5"])
        assert probe.ok, probe.stderr
        body, served_by = probe.stdout.split()
        assert body == '{"version":"0.1"}' and served_by
        uid = vm_ssh.run(["docker", "exec", "labkit-t2-inv", "id", "-u"], timeout=30)
        assert uid.stdout.strip() == "10001"
        stop = vm_ssh.run(["docker", "stop", "-t", "10", "labkit-t2-inv"], timeout=60)
        assert stop.ok, stop.stderr
        assert stop.seconds < 5, f"docker stop took {stop.seconds:.1f}s: SIGTERM was not handled"
        code = vm_ssh.run(["docker", "inspect", "--format", "{{.State.ExitCode}}", "labkit-t2-inv"], timeout=30)
        assert code.stdout.strip() == "0"
    finally:
        vm_ssh.run(["docker", "rm", "-f", "labkit-t2-inv"], timeout=60)
