"""inv/Dockerfile built for real by a real dockerd, on a stand-in for the pinned base image, then run.

The bundle's base image (settings images.inv_base) cannot be pulled here; a local Debian+python3
rootfs is imported under exactly that name, as the bundle would `docker load` it into the VM.
"""
from __future__ import annotations

import http.client
import re
import shutil
import socket
import time

import pytest

from labkit import settings as settings_mod
from labkit.app import build as build_mod
from tests.support.env import REPO, free_port

pytestmark = pytest.mark.t1

DOCKERFILE = REPO / "inv" / "Dockerfile"


@pytest.fixture(scope="module")
def names():
    return build_mod.images(settings_mod.load(REPO, {}))


@pytest.fixture(scope="module")
def built(dockerd, stand_in_image, names, tmp_path_factory):
    """The image built from a copy of inv/ that also holds files .dockerignore must keep out."""
    stand_in_image(names["inv_base"])
    ctx = tmp_path_factory.mktemp("inv-context")
    shutil.copytree(REPO / "inv", ctx, dirs_exist_ok=True)
    (ctx / "notes.txt").write_text("not for the image")
    (ctx / "__pycache__").mkdir(exist_ok=True)
    (ctx / "__pycache__" / "app.cpython-37.pyc").write_bytes(b"\0")
    client = dockerd.client()
    image, logs = client.images.build(path=str(ctx), tag=names["inv"], buildargs={"BASE": names["inv_base"]},
                                      network_mode="host", rm=True, forcerm=True, pull=False)
    yield client, image
    client.close()


def get(port: int, path: str = "/", deadline: float = 20.0):
    end = time.monotonic() + deadline
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            resp = conn.getresponse()
            result = resp.status, dict(resp.getheaders()), resp.read()
            conn.close()
            return result
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def test_image_runs_non_root_with_only_the_app(built):
    client, image = built
    assert image.attrs["Config"]["User"] == "10001:10001"
    assert image.attrs["Config"]["Cmd"] == ["python3", "/app/app.py"]
    out = client.containers.run(image.id, ["sh", "-c", "id -u; ls -A /app"], network_mode="host", remove=True)
    uid, *files = out.decode().split()
    assert uid == "10001"
    assert files == ["app.py"]  # .dockerignore kept notes.txt and __pycache__ out


def test_the_app_layer_is_small(built, names):
    client, image = built
    base = client.images.get(names["inv_base"])
    assert image.attrs["Size"] - base.attrs["Size"] < 64 * 1024


def test_container_serves_the_lab_body_and_stops_fast_on_sigterm(built):
    client, image = built
    port = free_port()
    container = client.containers.run(image.id, network_mode="host", environment={"PORT": str(port)}, detach=True)
    try:
        status, headers, body = get(port)
        assert (status, body) == (200, b'{"version":"0.1"}')
        assert headers["X-Served-By"] == socket.gethostname()  # host network: the host's name
        assert get(port, "/healthz")[0] == 200
        top = container.top(ps_args="-o pid,uid")
        assert [row[top["Titles"].index("UID")] for row in top["Processes"]] == ["10001"]
        started = time.monotonic()
        container.stop(timeout=10)  # SIGTERM to python as PID 1, SIGKILL only after 10 s
        seconds = time.monotonic() - started
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        assert seconds < 3, f"docker stop took {seconds:.1f}s"
        logs = container.logs().decode()
        assert re.search(r'"GET /" 200$', logs, re.M) and logs.rstrip().endswith("inv stopped")
    finally:
        container.remove(force=True)


def test_dockerfile_default_base_is_the_settings_pin(names):
    # A hand-run `docker build inv/` in the VM must use the same base as app.build.
    match = re.search(r"^ARG BASE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert match and match.group(1) == names["inv_base"]


def test_dockerfile_is_plain_syntax_for_docker_18_09():
    text = DOCKERFILE.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert not re.search(r"^#\s*syntax=", text, re.M | re.I), "a BuildKit frontend directive"
    assert not any(re.search(r"--(mount|chmod|link|network|security|parents|exclude)\b", ln) for ln in lines)
    assert not any("<<" in ln for ln in lines), "heredocs need BuildKit"
    # ARG before FROM, then one FROM that uses it.
    assert lines[0].startswith("ARG BASE=") and lines[1] == "FROM ${BASE}"
    assert sum(ln.startswith("FROM ") for ln in lines) == 1
