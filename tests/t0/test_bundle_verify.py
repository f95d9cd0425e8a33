"""verify (parallel hashing), status and the server's range parsing, on real files in a temp dir."""
from __future__ import annotations

import hashlib
import os
import textwrap
import time

import pytest

from labkit.bundle import lock, serve, status, verify

DATA = {"k8s/a.bin": os.urandom(300_000), "cni/b.tgz": os.urandom(1000), "images/c.tar": b"c" * 5000}


@pytest.fixture
def bundle(tmp_path):
    entries = []
    for i, (path, data) in enumerate(DATA.items()):
        entries.append(f"""\
          - name: n{i}
            kind: file
            urls: [https://example.org/{i}]
            sha512: {hashlib.sha512(data).hexdigest()}
            size: {len(data)}
            path: {path}
        """)
    entries.append("""\
          - name: unpinned
            kind: file
            urls: [https://example.org/u]
            path: manifests/u.yaml
        """)
    entries.append(f"""\
          - name: img
            kind: image
            ref: registry.k8s.io/pause:3.1
            sha256: {"e" * 64}
            path: images/pause.tar
        """)
    p = tmp_path / "lock.yaml"
    p.write_text("artifacts:\n" + "".join(textwrap.dedent(e) for e in entries) + f"count: {len(entries)}\n")
    dest = tmp_path / "bundle"
    for path, data in DATA.items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_bytes(data)
    (dest / "manifests").mkdir()
    (dest / "manifests/u.yaml").write_text("kind: DaemonSet\n")
    return lock.load(p), dest


def problems(findings):
    return {f.name: f.problem for f in findings}


def test_intact_bundle_except_the_unpinned(bundle):
    lk, dest = bundle
    got = problems(verify.verify(lk.artifacts, dest))
    assert got == {"n0": None, "n1": None, "n2": None, "unpinned": "unpinned", "img": "missing"}
    assert problems(verify.verify(lk.artifacts, dest, allow_unpinned=True))["unpinned"] is None


def test_corruption_is_found_by_size_and_by_hash(bundle):
    lk, dest = bundle
    (dest / "cni/b.tgz").write_bytes(b"short")
    data = bytearray(DATA["k8s/a.bin"])
    data[123_456] ^= 0xFF
    (dest / "k8s/a.bin").write_bytes(bytes(data))
    got = verify.verify(lk.artifacts, dest, threads=2)
    assert problems(got)["n0"] == "corrupt (sha512 mismatch)"
    assert problems(got)["n1"] == "corrupt (size 5, expected 1000)"
    fixes = {f.name: f.fix for f in got}
    assert fixes["n0"] == "invoke bundle.fetch --only n0"
    assert "bundle.lock --only unpinned" in fixes["unpinned"] and "bundle.lock --only img" in fixes["img"]


def test_an_image_with_a_sha256_but_no_digest_is_still_unpinned(bundle):
    lk, dest = bundle
    (dest / "images/pause.tar").write_bytes(b"x")
    assert problems(verify.verify(lk.artifacts, dest))["img"] == "unpinned"


def test_hashing_counts_every_byte(bundle):
    lk, dest = bundle
    seen = []
    verify.verify(lk.artifacts, dest, on_bytes=seen.append)
    assert sum(seen) == sum(len(d) for d in DATA.values())


def test_status_rows(bundle):
    lk, dest = bundle
    (dest / "images/pause.tar.part").write_bytes(b"x" * 2_000_000)
    now = time.time()
    (dest / "CHECKSUMS").write_text("")
    os.utime(dest / "CHECKSUMS", (now - 3 * 86400, now - 3 * 86400))
    rows = dict(status.report(lk, dest, now=now))
    assert rows["complete"] == "4 of 5 artifacts present"
    assert rows["missing"] == "img (invoke bundle.fetch)"
    assert rows["unpinned"].startswith("2: unpinned, img")
    assert rows["partial"].startswith("1 interrupted download(s), 2.0 MB")
    assert rows["last fetch/verify"] == "3 days ago"
    assert rows["size"].startswith("0.3 MB on disk")


@pytest.mark.parametrize("header, size, want", [
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=90-", 100, (90, 99)),
    ("bytes=90-500", 100, (90, 99)),
    ("bytes=-10", 100, (90, 99)),
    ("bytes=-500", 100, (0, 99)),
    ("bytes=100-", 100, "unsatisfiable"),
    ("bytes=-0", 100, "unsatisfiable"),
    ("bytes=9-3", 100, None),
    ("bytes=0-1,4-5", 100, None),
    ("items=0-1", 100, None),
])
def test_range_header(header, size, want):
    assert serve._parse_range(header, size) == want


def test_served_files_are_exactly_the_lock(bundle):
    lk, dest = bundle
    files = serve.files_of(lk.artifacts, dest)
    assert sorted(files) == sorted(["/" + a.path for a in lk.artifacts] + ["/CHECKSUMS"])


def test_status_counts_only_the_needed_boxes_and_interrupted_image_fetches(tmp_path):
    entries = [("k8s", "k8s/node.tgz", 100_000, ""),
               ("box-virtualbox", "boxes/vb.box", 400_000, "\n  box: ubuntu/xenial64\n  provider: virtualbox"),
               ("box-libvirt", "boxes/lv.box", 900_000, "\n  box: generic/ubuntu1604\n  provider: libvirt")]
    (tmp_path / "lock.yaml").write_text("artifacts:\n" + "".join(
        f"  - name: {n}\n    kind: file\n    urls: [https://example.org/{n}]\n    sha256: {'a' * 64}\n"
        f"    size: {size}\n    path: {path}" + extra.replace("\n", "\n  ") + "\n" for n, path, size, extra in entries)
        + f"count: {len(entries)}\n")
    lk, dest = lock.load(tmp_path / "lock.yaml"), tmp_path / "bundle"
    (dest / "k8s").mkdir(parents=True)
    (dest / "k8s/node.tgz").write_bytes(b"n" * 100_000)
    (dest / "boxes").mkdir()
    (dest / "boxes/vb.box.part").write_bytes(b"v" * 1_000_000)
    # what an interrupted image fetch leaves: finished blobs, and the one it was downloading
    blobs = dest / "images/pause.tar.blobs.part"
    blobs.mkdir(parents=True)
    (blobs / ("1" * 64)).write_bytes(b"1" * 1_000_000)
    (blobs / ("2" * 64)).write_bytes(b"2" * 1_000_000)
    (blobs / ("3" * 64 + ".part")).write_bytes(b"3" * 500_000)
    rows = dict(status.report(lk, dest, now=time.time(), provider="virtualbox"))
    assert rows["complete"] == "1 of 2 artifacts present"
    assert rows["size"] == "0.1 MB on disk of 0.5 MB known"
    assert rows["partial"] == "2 interrupted download(s), 3.5 MB (bundle.fetch resumes them)"
