"""bundle.lock (the task) against a real HTTP server: pins from a published index or first download."""
from __future__ import annotations

import lzma
import os

import pytest

from tests.support.bundle import Fault, file_entry, invoke, sha256, write_lock
from labkit.bundle import lock

pytestmark = pytest.mark.t1

DEB = os.urandom(200_000)
YAML = b"apiVersion: apps/v1\nkind: DaemonSet\n"


def packages_index(filename: str, data: bytes) -> bytes:
    stanza = (f"Package: socat\nVersion: 1.7.3.1-1\nArchitecture: amd64\nFilename: pool/main/s/socat/{filename}\n"
              f"Size: {len(data)}\nSHA256: {sha256(data)}\n\n")
    return lzma.compress(("Package: other\nFilename: pool/main/o/other_1_amd64.deb\nSHA256: " + "e" * 64
                          + "\n\n" + stanza).encode())


def test_pins_from_the_published_index_and_by_first_download(srv, tmp_path):
    deb = "socat_1.7.3.1-1_amd64.deb"
    index = srv.add("/SHA256SUMS", f"{sha256(DEB)}  {deb}\n".encode())  # Ubuntu's chain: test_bundle_aptchain.py
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        "# socat: pinned from the index\n" + file_entry("socat", f"debs/base/{deb}", [srv.add(f"/pool/{deb}", DEB)],
                                                         extra=f"  published: {index}"),
        file_entry("weave-manifest", "manifests/weave.yaml", [srv.add("/weave.yaml", YAML)])])
    dest = tmp_path / "bundle"
    dry = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(dest), "--dry-run")
    assert dry.returncode == 0 and "published list" in dry.stdout and "first download" in dry.stdout
    assert not any(s.path.startswith("/pool") for s in srv.seen) and not dest.exists()

    proc = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(dest))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lk = lock.load(lock_file)
    assert (lk.get("socat").sha256, lk.get("socat").size) == (sha256(DEB), len(DEB))
    assert (lk.get("weave-manifest").sha256, lk.get("weave-manifest").size) == (sha256(YAML), len(YAML))
    text = lock_file.read_text()
    assert "# socat: pinned from the index" in text
    assert "from the published checksum list" in text and "first download (review)" in text
    assert "1 pin(s) recorded by trust on first use" in proc.stderr and "weave-manifest" in proc.stderr
    # now everything is pinned: fetch and verify need no flag, and the VM's CHECKSUMS lists both
    assert invoke("bundle.verify", "--lock", str(lock_file), "--dest", str(dest)).returncode == 0
    assert (dest / "CHECKSUMS").read_text().count(" sha256 ") == 2
    again = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(dest))
    assert again.returncode == 0 and "Nothing to pin" in again.stdout


def test_a_download_that_contradicts_the_publisher_is_not_pinned(srv, tmp_path):
    deb = "socat_1.7.3.1-1_amd64.deb"
    index = srv.add("/SHA256SUMS", f"{sha256(DEB)}  {deb}\n".encode())
    tampered = srv.add(f"/pool/{deb}", DEB[:-1] + b"!")
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        file_entry("socat", f"debs/base/{deb}", [tampered], extra=f"  published: {index}")])
    before = lock_file.read_text()
    proc = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("labkit: socat (debs/base/") and "do not match the lock" in last
    assert lock_file.read_text() == before
    assert not (tmp_path / "b" / "debs/base" / deb).exists()


def test_an_index_without_the_file_is_one_clear_line(srv, tmp_path):
    index = srv.add("/SHA256SUMS", f"{sha256(DEB)}  socat_9_amd64.deb\n".encode())
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        file_entry("socat", "debs/base/socat_1_amd64.deb", [srv.add("/socat_1_amd64.deb", DEB)],
                   extra=f"  published: {index}")])
    proc = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    assert proc.returncode == 1
    assert "lists no checksum for socat_1_amd64.deb" in proc.stderr and "Fix: " in proc.stderr


def test_pins_that_worked_are_written_even_when_others_fail(srv, tmp_path):
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        file_entry("weave-manifest", "manifests/weave.yaml", [srv.add("/weave.yaml", YAML)]),
        file_entry("gone", "manifests/gone.yaml", [srv.url + "/gone.yaml"]),
        file_entry("also-gone", "manifests/also-gone.yaml", [srv.url + "/also-gone.yaml"])])
    proc = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert any(ln.startswith("labkit: gone (manifests/gone.yaml) was not found") for ln in lines)
    assert any(ln.startswith("labkit: also-gone (") for ln in lines)
    assert lines[-1].startswith("labkit: 2 of 3 artifacts could not be pinned") and "1 were pinned" in lines[-1]
    lk = lock.load(lock_file)
    assert lk.get("weave-manifest").sha256 == sha256(YAML) and not lk.get("gone").pinned


def test_checksum_lists_that_fail_cost_only_their_artifacts(srv, tmp_path):
    from tests.support.env import free_port

    deb = "socat_1.7.3.1-1_amd64.deb"
    down = f"http://127.0.0.1:{free_port()}/Packages.xz"  # nothing listens: no network
    broken = srv.add("/broken/Packages.xz", packages_index(deb, DEB)[:-40])  # an interrupted download
    srv.fault("/err/Packages.xz", Fault(status=503), times=0)
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        file_entry("weave-manifest", "manifests/weave.yaml", [srv.add("/weave.yaml", YAML)]),
        file_entry("socat", f"debs/base/{deb}", [srv.add(f"/pool/{deb}", DEB)], extra=f"  published: {down}"),
        file_entry("pigz", "debs/docker/pigz.deb", [srv.add("/pigz.deb", DEB)], extra=f"  published: {broken}"),
        file_entry("ethtool", "debs/base/ethtool.deb", [srv.add("/ethtool.deb", DEB)],
                   extra=f"  published: {srv.url}/err/Packages.xz")])
    proc = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("labkit: ") and "warning" not in ln]
    assert lines[0].startswith(f"labkit: socat: its checksum list {down} could not be reached (connection refused)")
    assert lines[1].startswith(f"labkit: pigz: its checksum list {broken} is damaged")
    assert lines[2].startswith("labkit: ethtool: its checksum list") and "answered HTTP 503" in lines[2]
    assert all("Fix: " in ln for ln in lines)
    assert lines[-1].startswith("labkit: 3 of 4 artifacts could not be pinned") and "1 were pinned" in lines[-1]
    lk = lock.load(lock_file)
    assert lk.get("weave-manifest").sha256 == sha256(YAML)
    assert not any(lk.get(n).pinned for n in ("socat", "pigz", "ethtool"))
    assert not any(s.path in ("/pool/" + deb, "/pigz.deb", "/ethtool.deb") for s in srv.seen)  # nothing unpinnable


def test_a_packages_index_outside_dists_is_refused(srv, tmp_path):
    """An apt index is only as good as the signed InRelease above it: without one, no pin from it."""
    deb = "socat_1.7.3.1-1_amd64.deb"
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        file_entry("socat", f"debs/base/{deb}", [srv.add(f"/pool/{deb}", DEB)],
                   extra=f"  published: {srv.add('/Packages.xz', packages_index(deb, DEB))}")])
    before = lock_file.read_text()
    proc = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "is an apt Packages index outside dists/<suite>/" in proc.stderr and "dists/xenial/universe" in proc.stderr
    assert lock_file.read_text() == before
