"""The trust anchors (Ubuntu's archive keys, committed as data) and the provenance of every pin."""
from __future__ import annotations

import shutil

import pytest

from labkit.bundle import aptchain, lock, lockedit, openpgp, resolve
from labkit.bundle.lock import LockError
from labkit.errors import LabkitError
from tests.support.openpgp import UBUNTU_2012, UBUNTU_2018


def test_the_committed_archive_keys_are_exactly_ubuntus():
    files = sorted(p.name for p in aptchain.KEY_DIR.glob("*.asc"))
    assert files == ["ubuntu-archive-2012.asc", "ubuntu-archive-2018.asc"]
    found = {openpgp.load_key((aptchain.KEY_DIR / f).read_text()).fingerprint for f in files}
    assert found == {UBUNTU_2012, UBUNTU_2018}
    assert {k.fingerprint for k in aptchain.trusted_keys()} == {UBUNTU_2012, UBUNTU_2018}
    assert all(k.n.bit_length() == 4096 for k in aptchain.trusted_keys())


def test_a_swapped_key_file_is_refused(tmp_path, monkeypatch):
    shutil.copy(aptchain.KEY_DIR / "ubuntu-archive-2018.asc", tmp_path / "ubuntu-archive-2012.asc")
    shutil.copy(aptchain.KEY_DIR / "ubuntu-archive-2018.asc", tmp_path / "ubuntu-archive-2018.asc")
    monkeypatch.setattr(aptchain, "KEY_DIR", tmp_path)
    aptchain._anchors.cache_clear()
    try:
        with pytest.raises(LabkitError, match=f"is not the key with fingerprint {UBUNTU_2012}"):
            aptchain.trusted_keys()
    finally:
        aptchain._anchors.cache_clear()


def test_a_damaged_extra_key_is_one_line(tmp_path):
    (tmp_path / "mirror.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!\n-----END PGP PUBLIC KEY BLOCK-----\n")
    with pytest.raises(LabkitError, match="mirror.asc has a damaged PGP public key block"):
        aptchain.trusted_keys(tmp_path)


def test_only_indexes_under_dists_take_the_signed_chain():
    assert aptchain.is_signed_index("http://archive.ubuntu.com/ubuntu/dists/xenial/universe/binary-amd64/Packages.xz")
    assert not aptchain.is_signed_index("https://github.com/x/y/releases/download/v1/SHA256SUMS")
    text = "Suite: xenial\nSHA256:\n abc 12 main/x\n def 3 universe/y\n"
    assert aptchain.fields(text)["SHA256"].split("\n") == ["", "abc 12 main/x", "def 3 universe/y"]


LOCK = """\
artifacts:
  - name: socat
    kind: file
    urls: [http://archive.ubuntu.com/ubuntu/pool/universe/s/socat/socat_1.7.3.1-1_amd64.deb]
    published: http://archive.ubuntu.com/ubuntu/dists/xenial/universe/binary-amd64/Packages.xz
    path: debs/base/socat_1.7.3.1-1_amd64.deb
  - name: crictl
    kind: file
    urls: [https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.13.0/crictl.tgz]
    published: https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.13.0/crictl.tgz.sha256
    path: k8s/crictl.tgz
  - name: weave-manifest
    kind: file
    urls: [https://github.com/weaveworks/weave/releases/download/v2.8.1/weave.yaml]
    path: manifests/weave.yaml
  - name: nginx
    kind: image
    ref: docker.io/library/nginx:1.17.1
    digest: sha256:{a}
    provenance: recorded-digest
    path: images/nginx.tar
  - name: etcd
    kind: image
    ref: registry.k8s.io/etcd:3.3.10
    path: images/etcd.tar
count: 5
"""


def test_provenance_is_given_by_where_the_pin_came_from_and_round_trips(tmp_path):
    p = tmp_path / "bundle.lock.yaml"
    p.write_text(LOCK.replace("{a}", "a" * 64))
    lk = lock.load(p)
    updates = {"socat": {"sha256": "1f" * 32}, "crictl": {"sha256": "2f" * 32}, "weave-manifest": {"sha256": "3f" * 32},
               "nginx": {"sha256": "4f" * 32}, "etcd": {"digest": "sha256:" + "5f" * 32, "sha256": "6f" * 32}}
    groups = resolve.by_provenance(lk, updates)
    assert {k: sorted(v) for k, v in groups.items()} == {
        "signed-index": ["socat"], "publisher-checksum": ["crictl"], "first-use": ["etcd", "weave-manifest"],
        "recorded-digest": ["nginx"]}
    for values in groups.values():
        lockedit.record(p, values)
    again = lock.load(p)
    assert {a.name: a.provenance for a in again.artifacts} == {
        "socat": "signed-index", "crictl": "publisher-checksum", "weave-manifest": "first-use",
        "nginx": "recorded-digest", "etcd": "first-use"}
    assert all(a.pinned for a in again.artifacts)


def test_an_unknown_provenance_is_refused(tmp_path):
    p = tmp_path / "bundle.lock.yaml"
    p.write_text(LOCK.replace("{a}", "a" * 64).replace("provenance: recorded-digest", "provenance: trust-me"))
    with pytest.raises(LockError, match="provenance 'trust-me' is not one of publisher-checksum"):
        lock.load(p)


def test_every_pin_of_the_committed_lock_says_where_it_came_from(repo):
    lk = lock.load(repo / "bundle.lock.yaml")
    for a in lk.artifacts:
        has_pin = bool(a.sha256 or a.sha512 or a.digest or a.id)
        assert (a.provenance is not None) == has_pin, a.name
        if a.published and "/dists/" in a.published and a.provenance:
            assert a.provenance == "signed-index", a.name


def test_status_counts_pins_per_provenance_and_names_the_first_use_ones(tmp_path):
    from labkit.bundle import status

    p = tmp_path / "bundle.lock.yaml"
    p.write_text(LOCK.replace("{a}", "a" * 64).replace(
        "    path: manifests/weave.yaml", f"    sha256: {'b' * 64}\n    provenance: first-use\n    path: manifests/weave.yaml"))
    rows = dict(status.report(lock.load(p), tmp_path / "bundle"))
    assert rows["provenance"] == ("1 recorded-digest, 1 first-use (weave-manifest); 3 unpinned, bundle.lock pins them "
                                  "from: 1 publisher-checksum, 1 signed-index, 1 first-use (etcd)")


def test_the_audit_report_compares_what_it_can_and_says_what_it_cannot(tmp_path):
    from labkit.bundle import audit

    p = tmp_path / "bundle.lock.yaml"
    p.write_text(LOCK.replace("{a}", "a" * 64)
                 .replace("    path: debs/base/", f"    sha256: {'1f' * 32}\n    provenance: signed-index\n"
                                                 "    path: debs/base/")
                 .replace("    path: k8s/crictl.tgz", f"    sha256: {'2f' * 32}\n    provenance: publisher-checksum\n"
                                                     "    path: k8s/crictl.tgz")
                 .replace("    path: manifests/weave.yaml", f"    sha256: {'3f' * 32}\n    provenance: first-use\n"
                                                            "    path: manifests/weave.yaml"))
    lk = lock.load(p)
    now = {"socat": ("sha256", "1f" * 32), "crictl": ("sha256", "9f" * 32)}

    def published(a):
        return now[a.name]

    def tag_digest(a):
        return "sha256:" + "c" * 64 if a.name == "nginx" else LabkitError("cannot reach docker.io (timed out)", "")

    got = {r.name: r for r in audit.rows(lk, published, tag_digest)}
    assert got["socat"].verdict == audit.SAME
    assert got["crictl"].verdict == audit.DIFFERENT and got["crictl"].found == "sha256:9f9f9f9f9f9f…"
    assert got["nginx"].verdict == audit.DIFFERENT and "now points elsewhere" in got["nginx"].note
    assert got["weave-manifest"].verdict == audit.BY_HAND and got["weave-manifest"].provenance == "first-use"
    assert got["etcd"].verdict == audit.UNCHECKED and "unpinned" in got["etcd"].note
    broken = audit.rows(lk, lambda a: LabkitError("its InRelease has a BAD signature", ""), tag_digest)
    assert {r.name: r.verdict for r in broken}["socat"] == audit.UNCHECKED
    assert "BAD signature" in {r.name: r.note for r in broken}["socat"]
