"""Images taken from a release tarball (issue 16): the lock's shape, the docker-save rewrite and its check,
the streaming pass over a .tar.gz source, provenance and the audit. Real files in tmp_path, no network."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from labkit.bundle import archive, audit, derive, lock, resolve, status
from labkit.errors import LabkitError
from tests.t1.bundle_support import write_lock


SERVER = """- name: kubernetes-server
  kind: file
  urls: [https://dl.k8s.io/v1.15.12/kubernetes-server-linux-amd64.tar.gz]
  sha512: {sha512}
  path: sources/kubernetes-server-linux-amd64.tar.gz
  provenance: changelog"""


def taken(name: str, extra: str = "") -> str:
    return (f"- name: {name}\n  kind: image\n  source: kubernetes-server\n"
            f"  member: kubernetes/server/bin/{name}.tar\n  tag: k8s.gcr.io/{name}:v1.15.12\n"
            f"  path: images/{name}-v1.15.12.tar" + (f"\n{extra}" if extra else ""))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def layer(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            _add(t, name, data)
    return buf.getvalue()


def docker_save(tags: list, layers: list, arch: str = "amd64") -> tuple[bytes, str]:
    """A `docker save` tarball as Docker writes it (<id>/layer.tar, <config>.json, manifest.json,
    repositories); returns (bytes, image ID)."""
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/x"]},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]}}).encode()
    image_id = hashlib.sha256(config).hexdigest()
    buf = io.BytesIO()
    paths = [f"{hashlib.sha256(b'v1' + l).hexdigest()}/layer.tar" for l in layers]
    with tarfile.open(fileobj=buf, mode="w") as t:
        for p, l in zip(paths, layers):
            _add(t, p.replace("layer.tar", "VERSION"), b"1.0")
            _add(t, p, l)
        _add(t, f"{image_id}.json", config)
        _add(t, "manifest.json", json.dumps([{"Config": f"{image_id}.json", "RepoTags": tags,
                                              "Layers": paths}]).encode())
        _add(t, "repositories", b"{}")
    return buf.getvalue(), "sha256:" + image_id


LAYERS = [layer({"bin/x": b"\x7fELF kube-apiserver " * 500}), layer({"etc/nsswitch.conf": b"hosts: files dns\n"})]


def server_tarball(path: Path, members: dict) -> Path:
    with tarfile.open(path, "w:gz") as t:
        _add(t, "kubernetes/server/bin/kubeadm", b"\x7fELF kubeadm")
        for name, data in members.items():
            _add(t, f"kubernetes/server/bin/{name}", data)
    return path


def test_a_taken_image_is_pinned_by_its_id_and_its_source_is_left_out_of_what_a_laptop_needs(tmp_path):
    lk = lock.load(write_lock(tmp_path / "l.yaml", [SERVER.format(sha512="a" * 128), taken("kube-apiserver"),
                                                    taken("kube-proxy", f"  id: sha256:{'b' * 64}")]))
    api, proxy = lk.get("kube-apiserver"), lk.get("kube-proxy")
    assert not api.pinned and proxy.pinned and proxy.id == "sha256:" + "b" * 64
    assert (api.source, api.member) == ("kubernetes-server", "kubernetes/server/bin/kube-apiserver.tar")
    assert [a.name for a in lk.needed("virtualbox")] == ["kube-apiserver", "kube-proxy"]


@pytest.mark.parametrize("entries, phrase", [
    ([taken("kube-apiserver")], "'kube-apiserver' is taken from 'kubernetes-server', which is not a file"),
    ([SERVER.format(sha512="a" * 128), taken("kube-apiserver").replace("  member: kubernetes/server/bin/"
                                                                       "kube-apiserver.tar\n", "")], "needs member:"),
    ([SERVER.format(sha512="a" * 128), taken("kube-apiserver").replace("bin/kube", "../kube")], "needs member:"),
    ([SERVER.format(sha512="a" * 128), taken("kube-apiserver", "  ref: registry.k8s.io/kube-apiserver:v1.15.12")],
     "has no registry ref"),
    ([SERVER.format(sha512="a" * 128), taken("kube-apiserver", "  id: 0123")], "id must look like sha256:"),
    ([SERVER.format(sha512="a" * 128), taken("kube-apiserver").replace("  tag: k8s.gcr.io/kube-apiserver:v1.15.12\n",
                                                                       "")], "needs tag:"),
])
def test_a_taken_image_entry_that_cannot_work_is_refused_with_its_name(tmp_path, entries, phrase):
    with pytest.raises(lock.LockError) as exc:
        lock.load(write_lock(tmp_path / "l.yaml", entries))
    assert phrase in exc.value.message and "kube-apiserver" in exc.value.message


def _lock_with_pin(tmp_path, image_id=None) -> lock.Lock:
    return lock.load(write_lock(tmp_path / "l.yaml", [SERVER.format(sha512="a" * 128), taken(
        "kube-apiserver", f"  id: {image_id}" if image_id else "")]))


# The names a server tarball's member may carry. Before kubernetes PR #80047 (1.16) release.sh saved the
# amd64 image as <registry>/<name>:<version> (sig-release #728: the -amd64 suffix starts at 1.16); a build
# with KUBE_DOCKER_REGISTRY set also tagged it <registry>/<name>-amd64 (PR #80000's example).
SAVED_TAGS = {
    "unsuffixed (1.15 release.sh)": ["k8s.gcr.io/kube-apiserver:v1.15.12"],
    "two tags on one image": ["k8s.gcr.io/kube-apiserver:v1.15.12", "k8s.gcr.io/kube-apiserver-amd64:v1.15.12"],
    "suffixed (1.16 and later)": ["k8s.gcr.io/kube-apiserver-amd64:v1.15.12"],
}


@pytest.mark.parametrize("tags", SAVED_TAGS.values(), ids=SAVED_TAGS.keys())
def test_from_save_renames_and_compresses_and_check_taken_accepts_exactly_that(tmp_path, tags):
    save, image_id = docker_save(tags, LAYERS)
    (tmp_path / "save.tar").write_bytes(save)
    out = tmp_path / "out.tar"
    with open(out, "wb") as fh:
        got_id, sha256, size = archive.from_save(tmp_path / "save.tar", "k8s.gcr.io/kube-apiserver:v1.15.12", fh,
                                                 tmp_path / "work", "kube-apiserver")
    assert got_id == image_id
    assert (sha256, size) == (hashlib.sha256(out.read_bytes()).hexdigest(), out.stat().st_size)
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        names = tar.getnames()
        first = tar.extractfile(manifest[0]["Layers"][0]).read()
    assert manifest[0]["RepoTags"] == ["k8s.gcr.io/kube-apiserver:v1.15.12"]
    assert manifest[0]["Config"] == image_id.split(":")[1] + ".json"
    assert gzip.decompress(first) == LAYERS[0] and first[:2] == b"\x1f\x8b"
    assert not any("repositories" in n or "VERSION" in n for n in names)
    assert archive.check_taken(out, image_id, "k8s.gcr.io/kube-apiserver:v1.15.12") is None
    assert "is not tagged" in archive.check_taken(out, image_id, "k8s.gcr.io/kube-apiserver:v1.15.11")
    assert "does not carry the config" in archive.check_taken(out, "sha256:" + "0" * 64,
                                                              "k8s.gcr.io/kube-apiserver:v1.15.12")


def _rewrite(src: Path, dst: Path, change) -> None:
    """A copy of the archive with change(name, data) -> data or None (drop) applied to each member."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin:
            data = change(m.name, tin.extractfile(m).read())
            if data is not None:
                _add(tout, m.name, data)


def test_check_taken_names_a_changed_layer_a_changed_config_and_a_smuggled_member(tmp_path):
    save, image_id = docker_save(["k8s.gcr.io/kube-apiserver-amd64:v1.15.12"], LAYERS)
    (tmp_path / "save.tar").write_bytes(save)
    good = tmp_path / "good.tar"
    with open(good, "wb") as fh:
        archive.from_save(tmp_path / "save.tar", "k8s.gcr.io/kube-apiserver:v1.15.12", fh, tmp_path / "w", "kube-apiserver")
    tag = "k8s.gcr.io/kube-apiserver:v1.15.12"
    cases = {
        "layer": (lambda n, d: gzip.compress(LAYERS[1]) if n.endswith(".tar.gz") and d == _first_gz(good) else d,
                  "does not match its diff_id"),
        "config": (lambda n, d: d.replace(b"/bin/x", b"/bin/y") if n == image_id[7:] + ".json" else d,
                   "does not match the image ID"),
        "extra": (lambda n, d: d, None),
        "gone": (lambda n, d: None if n.endswith(".tar.gz") and d == _first_gz(good) else d, "lacks "),
    }
    for what, (change, phrase) in cases.items():
        bad = tmp_path / f"{what}.tar"
        _rewrite(good, bad, change)
        if what == "extra":
            with tarfile.open(bad, "a") as t:
                _add(t, "etc-shadow.tar", b"root::0:0")
            phrase = "has members the image does not name (etc-shadow.tar)"
        assert phrase in (archive.check_taken(bad, image_id, tag) or "intact"), what


def _first_gz(path: Path) -> bytes:
    with tarfile.open(path) as tar:
        name = json.loads(tar.extractfile("manifest.json").read())[0]["Layers"][0]
        return tar.extractfile(name).read()


@pytest.mark.parametrize("tags, layers, phrase", [
    (["k8s.gcr.io/kube-scheduler-amd64:v1.15.12"], LAYERS, "is tagged k8s.gcr.io/kube-scheduler-amd64:v1.15.12, "
                                                           "not kube-apiserver"),
    (["k8s.gcr.io/kube-scheduler:v1.15.12", "k8s.gcr.io/kube-scheduler-amd64:v1.15.12"], LAYERS,
     "is tagged k8s.gcr.io/kube-scheduler:v1.15.12, k8s.gcr.io/kube-scheduler-amd64:v1.15.12, not kube-apiserver"),
    (["k8s.gcr.io/kube-apiserver:v1.15.12"], "swap", "does not match its config"),
])
def test_from_save_refuses_a_member_that_is_not_the_named_image(tmp_path, tags, layers, phrase):
    save, _ = docker_save(tags, LAYERS)
    if layers == "swap":  # a layer's bytes changed after the config named its diff_id
        save = save.replace(b"kube-apiserver ", b"kube-apiservex ")
    (tmp_path / "save.tar").write_bytes(save)
    with pytest.raises(LabkitError) as exc, open(tmp_path / "out.tar", "wb") as fh:
        archive.from_save(tmp_path / "save.tar", "k8s.gcr.io/kube-apiserver:v1.15.12", fh, tmp_path / "w",
                          "kube-apiserver")
    assert phrase in exc.value.message


def test_take_reads_the_source_once_and_keeps_nothing_but_verified_archives(tmp_path):
    save, image_id = docker_save(["k8s.gcr.io/kube-apiserver:v1.15.12"], LAYERS)
    source = server_tarball(tmp_path / "server.tar.gz", {"kube-apiserver.tar": save})
    dest = tmp_path / "bundle"
    lk = _lock_with_pin(tmp_path)
    got = derive.take(source, [lk.get("kube-apiserver")], dest)
    assert got["kube-apiserver"][0] == image_id
    assert archive.check_image(dest / "images/kube-apiserver-v1.15.12.tar",
                               _lock_with_pin(tmp_path, image_id).get("kube-apiserver")) is None
    assert sorted(p.name for p in dest.rglob("*")) == ["images", "kube-apiserver-v1.15.12.tar"]
    assert derive.image_ids(source, [lk.get("kube-apiserver")], dest) == {"kube-apiserver": image_id}

    # a lock whose id is not the source's image: nothing written
    other = tmp_path / "other"
    wrong = derive.take(source, [_lock_with_pin(tmp_path, "sha256:" + "e" * 64).get("kube-apiserver")], other)
    assert "the lock pins sha256:eeeeeeeeeeee" in wrong["kube-apiserver"].message
    assert not [p for p in other.rglob("*") if p.is_file()]

    # a member the source lacks, a source cut short
    empty = server_tarball(tmp_path / "empty.tar.gz", {})
    assert "has no member kubernetes/server/bin/kube-apiserver.tar" in \
        derive.take(empty, [lk.get("kube-apiserver")], other)["kube-apiserver"].message
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    assert "could not be read to the end" in derive.take(cut, [lk.get("kube-apiserver")], other)["kube-apiserver"].message
    assert not [p for p in other.rglob("*") if p.is_file()]


def test_a_taken_image_gets_only_its_id_and_the_provenance_of_its_source(tmp_path):
    lk = _lock_with_pin(tmp_path)
    groups = resolve.by_provenance(lk, {"kube-apiserver": {"id": "sha256:" + "c" * 64}})
    assert groups == {"changelog": {"kube-apiserver": {"id": "sha256:" + "c" * 64, "provenance": "changelog"}}}
    from labkit.bundle import lockedit

    lockedit.record(lk.path, groups["changelog"], "test")
    again = lock.load(lk.path).get("kube-apiserver")
    assert again.pinned and again.id == "sha256:" + "c" * 64 and again.provenance == "changelog"
    assert status.provenance_summary(lk) == "1 changelog; 1 unpinned, bundle.lock pins them from: 1 changelog"
    assert status.provenance_summary(lock.load(lk.path)) == "2 changelog"


def test_the_audit_compares_the_id_read_again_from_the_source(tmp_path):
    lk = _lock_with_pin(tmp_path, "sha256:" + "c" * 64)
    never = lambda a: pytest.fail("only the taken image is asked")  # noqa: E731
    same = audit.rows(lk, lambda a: ("sha512", "a" * 128), never, lambda a: "sha256:" + "c" * 64)
    assert [(r.name, r.verdict) for r in same] == [("kubernetes-server", audit.BY_HAND), ("kube-apiserver", audit.SAME)]
    differ = audit.rows(lk, never, never, lambda a: "sha256:" + "d" * 64)[1]
    assert differ.verdict == audit.DIFFERENT and "is another image" in differ.note
    gone = audit.rows(lk, never, never, lambda a: LabkitError("needs kubernetes-server intact in the bundle", ""))[1]
    assert gone.verdict == audit.UNCHECKED and "needs kubernetes-server" in gone.note
