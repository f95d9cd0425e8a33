"""Where bundle.lock gets pins (published checksum lists) and how it writes them into the lock."""
from __future__ import annotations

import gzip
import lzma
import textwrap

import pytest

from labkit.bundle import lock, lockedit
from labkit.bundle.lock import LockError
from labkit.bundle.resolve import published_pin

S256 = "3ca15c0a18ee830520cf3a95408be826cbd255a1535a38e0be9608b25ad8bf64"
S512 = "b125ebc957bb56878b50275e52c5d4b8f1122f21c56e3132d91fe96259fc63f3ce716d5030e3854815a34589868b5c278b1dad3e822bed88c623b263d9c11f3d"

# Two stanzas in the layout of Ubuntu's dists/xenial/main/binary-amd64/Packages (values invented:
# the test is about the format, the real index is read by bundle.lock on a connected machine).
PACKAGES = f"""\
Package: socat
Priority: extra
Section: net
Installed-Size: 1056
Maintainer: Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>
Architecture: amd64
Version: 1.7.3.1-1
Depends: libc6 (>= 2.15), libssl1.0.0 (>= 1.0.2~beta3), libwrap0 (>= 7.6-4~)
Filename: pool/main/s/socat/socat_1.7.3.1-1_amd64.deb
Size: 321438
MD5sum: 00000000000000000000000000000000
SHA1: 0000000000000000000000000000000000000000
SHA256: {S256}
Description: multipurpose relay for bidirectional data transfer

Package: ebtables
Architecture: amd64
Version: 2.0.10.4-3.4ubuntu1
Filename: pool/main/e/ebtables/ebtables_2.0.10.4-3.4ubuntu1_amd64.deb
SHA256: {"f" * 64}
"""


@pytest.mark.parametrize("data, name, want", [
    (f"{S256}  cni-plugins-amd64-v0.7.5.tgz\n{'0' * 64}  other.tgz\n", "cni-plugins-amd64-v0.7.5.tgz",
     ("sha256", S256)),
    (f"{S512} *kubernetes-node-linux-amd64.tar.gz\n", "kubernetes-node-linux-amd64.tar.gz", ("sha512", S512)),
    (f"SHA256 (xenial-server-cloudimg-amd64-vagrant.box) = {S256}\n", "xenial-server-cloudimg-amd64-vagrant.box",
     ("sha256", S256)),
    (f"{S256}\n", "anything.tgz", ("sha256", S256)),  # a bare .sha256 sidecar
    (f"{S256}  ./sub/dir/a.tgz\n", "a.tgz", ("sha256", S256)),
    (f"{S256}  a.tgz\n", "b.tgz", None),
    (PACKAGES, "socat_1.7.3.1-1_amd64.deb", ("sha256", S256)),
    (PACKAGES, "ethtool_4.5-1_amd64.deb", None),
])
def test_published_pin_formats(data, name, want):
    assert published_pin(data.encode(), name) == want


def test_compressed_packages_indexes():
    for packed in (gzip.compress(PACKAGES.encode()), lzma.compress(PACKAGES.encode())):
        assert published_pin(packed, "socat_1.7.3.1-1_amd64.deb") == ("sha256", S256)


LOCK = """\
# header comment stays
artifacts:
  # pinned from the changelog
  - name: kubernetes-node
    kind: file
    urls: [https://dl.k8s.io/v1.15.12/kubernetes-node-linux-amd64.tar.gz]
    sha512: {s512}
    path: k8s/kubernetes-node-linux-amd64.tar.gz
  # digest from repo-info; archive sha256 by bundle.lock
  - name: nginx
    kind: image
    ref: docker.io/library/nginx:1.17.1
    digest: sha256:{a}
    path: images/nginx-1.17.1.tar

  # no pin yet
  - name: weave-manifest
    kind: file
    urls:
      - https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s-1.11.yaml
    path: manifests/weave-daemonset-k8s-1.11.yaml
count: 3
"""


def test_record_adds_and_replaces_values_and_keeps_every_comment(tmp_path):
    p = tmp_path / "bundle.lock.yaml"
    p.write_text(LOCK.format(s512=S512, a="a" * 64))
    lockedit.record(p, {"nginx": {"sha256": S256, "size": 1234}, "weave-manifest": {"sha256": "b" * 64}},
                    note="bundle.lock 2026-05-01")
    lockedit.record(p, {"nginx": {"digest": "sha256:" + "c" * 64}})
    text = p.read_text()
    for comment in ("# header comment stays", "# pinned from the changelog", "# no pin yet",
                    "# digest from repo-info; archive sha256 by bundle.lock"):
        assert comment in text
    lk = lock.load(p)
    assert (lk.get("nginx").sha256, lk.get("nginx").size, lk.get("nginx").digest) == (S256, 1234, "sha256:" + "c" * 64)
    assert lk.get("nginx").pinned and lk.get("weave-manifest").pinned
    assert lk.get("kubernetes-node").sha512 == S512  # untouched
    assert f"    sha256: {S256}  # bundle.lock 2026-05-01" in text
    # the new keys land inside their own entry, before the blank line and the next entry's comment
    assert text.index("size: 1234") < text.index("# no pin yet")


def test_record_refuses_what_it_cannot_find_and_leaves_the_file_alone(tmp_path):
    p = tmp_path / "bundle.lock.yaml"
    p.write_text(LOCK.format(s512=S512, a="a" * 64))
    before = p.read_text()
    with pytest.raises(LockError, match="cannot find the entry '- name: etcd'"):
        lockedit.record(p, {"etcd": {"sha256": S256}})
    with pytest.raises(LockError):  # a value the loader rejects never reaches the file
        lockedit.record(p, {"nginx": {"sha256": "XYZ"}})
    assert p.read_text() == before
    assert not list(tmp_path.glob("*.part"))


def test_record_on_the_committed_lock_shape(repo, tmp_path):
    p = tmp_path / "lock.yaml"
    p.write_text((repo / "bundle.lock.yaml").read_text())
    lockedit.record(p, {"etcd": {"digest": "sha256:" + "d" * 64, "sha256": "e" * 64, "size": 99}})
    lk = lock.load(p)
    assert lk.get("etcd").pinned and lk.get("etcd").size == 99
    assert textwrap.dedent(p.read_text()).count("- name: etcd\n") == 1
    assert lk.get("etcd-arm64").size is None  # its arm64 twin (same ref and digest) is left alone


def test_record_quotes_a_pin_yaml_would_read_as_a_number(tmp_path):
    p = tmp_path / "bundle.lock.yaml"
    p.write_text(LOCK.format(s512=S512, a="a" * 64))
    digits = "1" * 64  # a valid sha256 that happens to hold no letter
    lockedit.record(p, {"weave-manifest": {"sha256": digits, "provenance": "first-use"}})
    a = lock.load(p).get("weave-manifest")
    assert (a.sha256, a.provenance) == (digits, "first-use")
    assert f'sha256: "{digits}"' in p.read_text() and "provenance: first-use" in p.read_text()
