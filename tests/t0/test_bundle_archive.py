"""docker-archive writing: the layout Docker 18.09 loads, and the same bytes every time."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from labkit.bundle import archive
from labkit.bundle.registry import RegistryError

GZ = "application/vnd.docker.image.rootfs.diff.tar.gzip"
TAR = "application/vnd.oci.image.layer.v1.tar"


def layer(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def image(tmp_path):
    """Blobs on disk as fetch leaves them: config + a gzip layer + an uncompressed one used twice."""
    raw1, raw2 = layer({"bin/busybox": b"\x7fELF..."}), layer({"etc/hello": b"hi\n"})
    gz1 = gzip.compress(raw1, mtime=0)
    diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in (raw1, raw2, raw2)]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    blobs = {}
    for data in (config, gz1, raw2):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        (tmp_path / d[7:]).write_bytes(data)
        blobs[d] = data
    digests = list(blobs)
    config_desc = {"digest": digests[0], "size": len(config)}
    layers = [{"digest": digests[1], "mediaType": GZ}, {"digest": digests[2], "mediaType": TAR},
              {"digest": digests[2], "mediaType": TAR}]
    return config_desc, layers, (lambda d: tmp_path / d[7:]), blobs


def write(image, tag="k8s.gcr.io/pause:3.1"):
    config, layers, blob, _ = image
    out = io.BytesIO()
    sha, size = archive.write(out, tag, config, layers, blob)
    return out.getvalue(), sha, size


def test_layout_is_what_docker_load_reads(image):
    config, layers, _, blobs = image
    data, sha, size = write(image)
    assert hashlib.sha256(data).hexdigest() == sha and len(data) == size
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert manifest == [{"Config": config["digest"][7:] + ".json", "RepoTags": ["k8s.gcr.io/pause:3.1"],
                             "Layers": [layers[0]["digest"][7:] + ".tar.gz", layers[1]["digest"][7:] + ".tar",
                                        layers[1]["digest"][7:] + ".tar"]}]
        assert names == ["manifest.json", manifest[0]["Config"], *dict.fromkeys(manifest[0]["Layers"])]
        for m in members:  # registry blobs stored unchanged (docker load decompresses gzip itself)
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
        assert tar.extractfile(names[2]).read() == blobs[layers[0]["digest"]]


def test_same_image_same_bytes_and_the_tag_is_part_of_them(image):
    first, sha1, _ = write(image)
    second, sha2, _ = write(image)
    assert first == second and sha1 == sha2
    _, other, _ = write(image, tag="k8s.gcr.io/pause:3.2")
    assert other != sha1


def test_inconsistent_or_foreign_images_are_refused(image, tmp_path):
    config, layers, blob, _ = image
    with pytest.raises(RegistryError, match="lists 3 layers but the manifest 2"):
        archive.write(io.BytesIO(), "x:1", config, layers[:2], blob)
    arm = json.loads(blob(config["digest"]).read_bytes())
    arm["architecture"] = "arm64"
    data = json.dumps(arm).encode()
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / d[7:]).write_bytes(data)
    with pytest.raises(RegistryError, match="built for linux/arm64"):
        archive.write(io.BytesIO(), "x:1", {"digest": d}, layers, blob)


def signed_by_digest(image, tmp_path, tag="k8s.gcr.io/pause:3.1", tamper=None):
    """An archive with the registry's list + manifest inside; returns (path, the list's digest)."""
    config, layers, blob, _ = image
    manifest = json.dumps({"schemaVersion": 2, "config": config, "layers": layers}).encode()
    listing = json.dumps({"manifests": [
        {"digest": "sha256:" + "0" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    path = tmp_path / "image.tar"
    with open(path, "wb") as fh:
        archive.write(fh, tag, config, layers, blob, documents=(listing, manifest))
    return path, "sha256:" + hashlib.sha256(listing).hexdigest()


def test_an_archive_is_checked_against_the_digest_alone(image, tmp_path):
    path, digest = signed_by_digest(image, tmp_path)
    assert archive.check(path, digest, "k8s.gcr.io/pause:3.1") is None
    assert archive.check(path, "sha256:" + "f" * 64, "k8s.gcr.io/pause:3.1").startswith("does not carry the manifest")
    assert archive.check(path, digest, "k8s.gcr.io/pause:3.2") == "is not tagged k8s.gcr.io/pause:3.2 as the lock says"
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        member = next(m for m in tar if m.name.endswith(".tar.gz"))
    data[member.offset_data + 3] ^= 0xFF  # one byte of the gzip layer
    path.write_bytes(bytes(data))
    assert archive.check(path, digest, "k8s.gcr.io/pause:3.1") == f"has a {member.name} that does not match its digest"
    path.write_bytes(bytes(data[:len(data) // 2]))
    assert archive.check(path, digest, "k8s.gcr.io/pause:3.1").startswith("not a readable image archive")


def test_an_archive_with_a_smuggled_member_is_refused(image, tmp_path):
    path, digest = signed_by_digest(image, tmp_path)
    with tarfile.open(path, "a") as tar:
        info = tarfile.TarInfo("etc/cron.d/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert archive.check(path, digest, "k8s.gcr.io/pause:3.1") == "has members the image does not name (etc/cron.d/x)"
