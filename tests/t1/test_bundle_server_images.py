"""Control-plane images from the release's server tarball (issue 16), for real: a stand-in
kubernetes-server-linux-amd64.tar.gz with the real layout (kubernetes/server/bin/<name>.tar written by a
real dockerd's `docker save` under the names release tooling gave them before 1.16, <name>.docker_tag,
binaries) served over real HTTP. bundle.lock pins each image by the ID the daemon gave it, bundle.fetch writes archives
that the same dockerd `docker load`s under the names kubeadm 1.15 asks for, a student's fetch from the
classroom mirror gets the images and not the source, and damaged bytes anywhere are one line.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from labkit.bundle import lock
from tests.conftest import need_binary
from tests.t1.bundle_support import invoke, tmpfs, write_lock  # noqa: F401 (tmpfs: a fixture)
from tests.t1.test_bundle_registry import docker, load_and_run

pytestmark = pytest.mark.t1

VERSION = "v1.15.12"
NAMES = ("kube-apiserver", "kube-proxy")
# The tags each member is saved under. Before kubernetes PR #80047 (1.16) release.sh saved the amd64 image
# as <registry>/<name>:<version>; a build with KUBE_DOCKER_REGISTRY set also tagged it
# <registry>/<name>-amd64 (the example in PR #80000). So one image unsuffixed, one with both tags.
TAGS = {"kube-apiserver": [f"k8s.gcr.io/kube-apiserver:{VERSION}"],
        "kube-proxy": [f"k8s.gcr.io/kube-proxy:{VERSION}", f"k8s.gcr.io/kube-proxy-amd64:{VERSION}"]}
SOURCE_PATH = "/v1.15.12/kubernetes-server-linux-amd64.tar.gz"


def _add(tar, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def release(dockerd, tmp_path_factory):
    """({name: image ID as the daemon reports it}, the stand-in server tarball's bytes)."""
    busybox = need_binary("busybox")
    client = dockerd.client()
    ids, saved = {}, {}
    for name in NAMES:
        ctx = tmp_path_factory.mktemp(name)
        shutil.copy(busybox, ctx / "busybox")
        (ctx / "hello.txt").write_text(f"{name} from the release tarball\n")
        (ctx / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\nCOPY hello.txt /hello.txt\n"
                                        'CMD ["/bin/busybox", "cat", "/hello.txt"]\n')
        tags = TAGS[name]
        image, _ = client.images.build(path=str(ctx), tag=tags[0], network_mode="host", rm=True)
        for tag in tags[1:]:
            assert docker(dockerd, "tag", tags[0], tag).returncode == 0
        ids[name] = image.id
        out = tmp_path_factory.mktemp("save") / f"{name}.tar"
        assert docker(dockerd, "save", "-o", str(out), *tags).returncode == 0
        saved[name] = out.read_bytes()
        with tarfile.open(out) as tar:  # the member carries exactly these names, as the lock's check will see
            assert sorted(json.loads(tar.extractfile("manifest.json").read())[0]["RepoTags"]) == sorted(tags)
        for tag in tags:
            client.images.remove(tag, force=True)  # every `docker load` below must read our archive
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        _add(tar, "kubernetes/server/bin/kubeadm", Path(busybox).read_bytes(), 0o755)
        for name in NAMES:
            _add(tar, f"kubernetes/server/bin/{name}.tar", saved[name])
            _add(tar, f"kubernetes/server/bin/{name}.docker_tag", f"{VERSION}\n".encode())
    return ids, buf.getvalue()


def _lock(tmp_path: Path, url: str, data: bytes) -> Path:
    entries = [f"""- name: kubernetes-server
  kind: file
  urls: [{url}]
  sha512: {hashlib.sha512(data).hexdigest()}
  path: sources/kubernetes-server-linux-amd64.tar.gz
  provenance: changelog"""]
    entries += [f"""- name: {name}
  kind: image
  source: kubernetes-server
  member: kubernetes/server/bin/{name}.tar
  tag: k8s.gcr.io/{name}:{VERSION}
  path: images/{name}-{VERSION}.tar""" for name in NAMES]
    return write_lock(tmp_path / "bundle.lock.yaml", entries)


def test_images_from_the_server_tarball_pin_load_serve_and_audit(dockerd, release, srv, tmp_path):
    from tests.t1.test_bundle_serve import cli_serve

    ids, data = release
    lock_file = _lock(tmp_path, srv.add(SOURCE_PATH, data), data)
    dest, student = tmp_path / "instructor", tmp_path / "student"
    dry = invoke("bundle.lock", "--lock", lock_file, "--dest", dest, "--dry-run")
    assert "kubernetes/server/bin/kube-apiserver.tar inside kubernetes-server" in " ".join(dry.stdout.split())
    proc = invoke("bundle.lock", "--lock", lock_file, "--dest", dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "trust on first use" not in proc.stderr
    lk = lock.load(lock_file)
    for name in NAMES:  # the pin is the image ID the daemon itself computed when it built the image
        a = lk.get(name)
        assert (a.id, a.provenance, a.sha256, a.size) == (ids[name], "changelog", None, None)
    checksums = (dest / "CHECKSUMS").read_text()
    for name in NAMES:
        archive = dest / f"images/{name}-{VERSION}.tar"
        assert f"{name} sha256 {hashlib.sha256(archive.read_bytes()).hexdigest()} {archive.relative_to(dest)}" \
            in checksums
    status = invoke("bundle.status", "--lock", lock_file, "--dest", dest)
    assert "3 changelog" in status.stdout and "first-use" not in status.stdout, status.stdout
    assert invoke("bundle.verify", "--lock", lock_file, "--dest", dest).returncode == 0
    again = invoke("bundle.fetch", "--lock", lock_file, "--dest", dest)
    assert again.returncode == 0 and "already" in again.stdout + again.stderr, again.stdout + again.stderr
    # an image lost from the bundle is taken again from the tarball already there: nothing is downloaded
    (dest / f"images/kube-proxy-{VERSION}.tar").unlink()
    del srv.files[SOURCE_PATH]
    seen = len(srv.seen)
    retaken = invoke("bundle.fetch", "--lock", lock_file, "--dest", dest)
    assert retaken.returncode == 0, retaken.stdout + retaken.stderr
    assert len(srv.seen) == seen and (dest / f"images/kube-proxy-{VERSION}.tar").is_file()
    srv.add(SOURCE_PATH, data)
    audit = invoke("bundle.lock", "--lock", lock_file, "--dest", dest, "--audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert sum("same" in line for line in audit.stdout.splitlines() if "kube-" in line) == 2, audit.stdout

    with cli_serve(lock_file, dest) as (port, _):
        fetched = invoke("bundle.fetch", "--lock", lock_file, "--dest", student, "--from", f"http://127.0.0.1:{port}")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert not (student / "sources").exists()  # a laptop takes the images, never the 1.15 server tarball
    for name in NAMES:
        copy = student / f"images/{name}-{VERSION}.tar"
        assert copy.read_bytes() == (dest / f"images/{name}-{VERSION}.tar").read_bytes()
        assert load_and_run(dockerd, copy, f"k8s.gcr.io/{name}:{VERSION}") == f"{name} from the release tarball"


def test_damaged_bytes_are_one_line_and_nothing_is_pinned_or_saved(release, srv, tmp_path):
    ids, data = release
    url = srv.add(SOURCE_PATH, data)
    lock_file = _lock(tmp_path, url, data)
    before = lock_file.read_text()
    srv.add(SOURCE_PATH, data[:-100] + bytes(100))  # the source is not the pinned tarball
    dest = tmp_path / "bundle"
    bad = invoke("bundle.lock", "--lock", lock_file, "--dest", dest)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "kubernetes-server" in bad.stderr and "do not match the lock" in bad.stderr, bad.stderr
    assert "kube-apiserver: is taken from kubernetes-server, which could not be fetched" in bad.stderr
    assert lock_file.read_text() == before
    assert not [p for p in dest.rglob("*") if p.is_file() and p.name != "CHECKSUMS"]

    # the right source, then a mirror that serves a layer with one byte changed: refused, nothing saved
    srv.add(SOURCE_PATH, data)
    assert invoke("bundle.lock", "--lock", lock_file, "--dest", dest).returncode == 0
    archive = dest / f"images/kube-proxy-{VERSION}.tar"
    raw = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        layer = next(m for m in tar if m.name.endswith(".tar.gz") and m.size > 100000)
    raw[layer.offset_data + layer.size // 2] ^= 0xFF
    srv.add(f"/images/kube-proxy-{VERSION}.tar", bytes(raw))
    other = tmp_path / "student"
    fetched = invoke("bundle.fetch", "--lock", lock_file, "--dest", other, "--from", srv.url, "--only", "kube-proxy")
    assert fetched.returncode == 1 and "Traceback" not in fetched.stderr
    assert "kube-proxy" in fetched.stderr and "nothing was saved" in fetched.stderr, fetched.stderr
    assert not other.joinpath("images").exists() or not list(other.joinpath("images").iterdir())
    archive.write_bytes(bytes(raw))
    verify = invoke("bundle.verify", "--lock", lock_file, "--dest", dest)
    assert verify.returncode == 1 and "kube-proxy" in verify.stdout + verify.stderr


def test_a_disk_that_fills_while_taking_the_images_is_one_line_and_leaves_no_partial_files(srv, tmp_path, tmpfs):
    """No dockerd needed: a docker save tarball as Docker writes it (tests/t0/test_bundle_derive.py), with a
    layer of random bytes (it does not compress), so the source fits on the disk but the image does not."""
    import os

    from tests.t0.test_bundle_derive import docker_save, layer

    save, _ = docker_save([f"k8s.gcr.io/kube-apiserver-amd64:{VERSION}"], [layer({"bin/x": os.urandom(3_000_000)})])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        _add(tar, "kubernetes/server/bin/kube-apiserver.tar", save)
    data = buf.getvalue()
    lock_file = _lock(tmp_path, srv.add(SOURCE_PATH, data), data)  # kube-apiserver only: kube-proxy cut off
    lock_file.write_text(lock_file.read_text().split("  - name: kube-proxy")[0] + "count: 2\n")
    dest = tmpfs("8m")
    proc = invoke("bundle.lock", "--lock", lock_file, "--dest", dest)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"kube-apiserver (images/kube-apiserver-{VERSION}.tar): no space left on the disk" in proc.stderr, proc.stderr
    assert "kube-apiserver: kube-apiserver" not in proc.stderr
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]
    assert not (dest / f"images/kube-apiserver-{VERSION}.tar").exists()
    assert hashlib.sha512((dest / "sources/kubernetes-server-linux-amd64.tar.gz").read_bytes()).hexdigest() == \
        hashlib.sha512(data).hexdigest()  # the source it did fetch stays, intact, for the next run
