"""T1: the VM's registry mirror (provision/files/labkit-mirror.py) in front of a real Docker daemon.

A bundle image archive written by labkit's own writer (labkit/bundle/archive.py, as bundle.fetch
writes the bundle's busybox:1.31.0: the registry's manifest and gzip blobs inside), a real dockerd 20.10
started with `--registry-mirror` pointing at the mirror, and the lab's untagged `docker pull busybox`
(what the kubelet does for `kubectl run client --image busybox`, imagePullPolicy Always): it must
come from the bundle, offline, as busybox:latest = the bundle's busybox:1.31.0, and run. The image's
only file is this machine's static busybox (Debian busybox-static).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from labkit.bundle import archive
from tests.conftest import REPO, Dockerd, free_port, need_binary, need_root, stop_process

MIRROR = REPO / "provision" / "files" / "labkit-mirror.py"


def blob(store: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (store / digest[7:]).write_bytes(data)
    return digest


def bundle_image(images: Path, store: Path, repo_tag: str, busybox: Path) -> Path:
    """A one-layer image (bin/busybox) as the registry would serve it, written into a bundle archive."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tar.gettarinfo(str(busybox), arcname="bin/busybox")
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        with open(busybox, "rb") as fh:
            tar.addfile(info, fh)
    layer = raw.getvalue()
    gz = gzip.compress(layer, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/busybox", "sh"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
                         "history": [{"created_by": "labkit test: bin/busybox"}]}).encode()
    config_desc = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": blob(store, config)}
    layers = [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(gz),
               "digest": blob(store, gz)}]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": config_desc, "layers": layers}, indent=3).encode()
    path = images / (repo_tag.replace("/", "-").replace(":", "-") + ".tar")
    with open(path, "wb") as fh:
        archive.write(fh, repo_tag, config_desc, layers, lambda d: store / d[7:], documents=(manifest,))
    return path


@pytest.fixture
def mirror(tmp_path):
    images, store = tmp_path / "images", tmp_path / "blobs"
    images.mkdir()
    store.mkdir()
    bundle_image(images, store, "busybox:1.31.0", Path(need_binary("busybox")))
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(MIRROR), str(images), f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url + "/v2/", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.2)
    yield url, images
    stop_process(proc)


def test_the_labs_untagged_pull_comes_from_the_bundle_through_a_real_docker_daemon(mirror, tmp_path):
    need_root()
    need_binary("dockerd")
    url, images = mirror
    daemon = Dockerd(Path("/tmp") / f"labkit-mirror-{uuid.uuid4().hex[:8]}", extra=("--registry-mirror", url))
    daemon.start()
    try:
        def docker(*args, timeout=120):
            return subprocess.run(["docker", "--host", daemon.url, *args], capture_output=True, text=True,
                                  timeout=timeout)

        # as on the VM: provision/docker.sh has loaded the bundle's archive; nothing is tagged :latest
        loaded = docker("load", "--input", str(next(images.iterdir())))
        assert loaded.returncode == 0 and "busybox:1.31.0" in loaded.stdout, loaded.stderr
        assert docker("image", "inspect", "busybox:latest").returncode != 0
        pulled = docker("pull", "busybox")  # docker.io/library/busybox:latest; Docker Hub is unreachable here
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        ran = docker("run", "--rm", "--network", "none", "busybox", "/bin/busybox", "echo", "from the bundle")
        assert ran.returncode == 0 and ran.stdout == "from the bundle\n", ran.stderr
        # the tag the bundle names works too, and both are one image: the archive's config
        assert docker("pull", "busybox:1.31.0").returncode == 0
        ids = {docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() for ref in ("busybox", "busybox:1.31.0")}
        with tarfile.open(next(images.iterdir())) as tar:
            config = json.loads(tar.extractfile("manifest.json").read())[0]["Config"]
        assert ids == {"sha256:" + config[:-len(".json")]}
        # an image the bundle does not have: the mirror says unknown, Docker then fails offline
        missing = docker("pull", "nginx", timeout=180)
        assert missing.returncode != 0
    finally:
        daemon.stop()


def test_the_mirror_answers_like_a_registry_and_only_reads(mirror):
    url, _ = mirror
    with urllib.request.urlopen(url + "/v2/library/busybox/manifests/latest") as res:
        doc = res.read()
        assert res.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert res.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(doc).hexdigest()
    digest = json.loads(doc)["layers"][0]["digest"]
    with urllib.request.urlopen(url + f"/v2/library/busybox/blobs/{digest}") as res:
        assert "sha256:" + hashlib.sha256(res.read()).hexdigest() == digest
    for path, code in (("/v2/library/nginx/manifests/latest", "MANIFEST_UNKNOWN"),
                       ("/v2/library/busybox/blobs/sha256:" + "0" * 64, "BLOB_UNKNOWN")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + path)
        assert err.value.code == 404 and json.loads(err.value.read())["errors"][0]["code"] == code
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url + "/v2/library/busybox/manifests/latest", data=b"{}",
                                                      method="PUT"))
    assert err.value.code == 405


def test_the_mirror_is_python_3_5(tmp_path):
    """xenial's python3 is 3.5: no f-strings, no annotations, nothing newer than 3.5's grammar."""
    import ast

    ast.parse(MIRROR.read_text(), feature_version=(3, 5))
    assert not any(isinstance(n, ast.JoinedStr) for n in ast.walk(ast.parse(MIRROR.read_text())))
