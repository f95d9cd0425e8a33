"""bundle.lock pins Ubuntu packages only through a signed InRelease: a real archive made here, signed with
GnuPG by a key made for the test, served over real HTTP, the real `invoke bundle.lock` command line."""
from __future__ import annotations

import hashlib
import lzma
import os
import subprocess
import time

import pytest

from tests.conftest import need_binary
from tests.t1.bundle_support import file_entry, invoke, sha256, write_lock
from labkit.bundle import lock

pytestmark = pytest.mark.t1

DEB = os.urandom(150_000)
DEB_NAME = "socat_1.7.3.1-1_amd64.deb"
INDEX_PATH = "universe/binary-amd64/Packages.xz"


class Gpg:
    """A throwaway GnuPG home with one signing key (RSA 2048, created on 2020-01-01)."""

    def __init__(self, home, uid):
        self.gpg = need_binary("gpg")
        self.home = home
        home.mkdir(mode=0o700)
        self.run("--faked-system-time", "20200101T000000!", "--quick-gen-key", uid, "rsa2048", "sign", "never")
        self.public = home / "public.asc"
        self.public.write_bytes(self.run("--armor", "--export"))

    def run(self, *args, data: bytes = b"") -> bytes:
        proc = subprocess.run([self.gpg, "--homedir", str(self.home), "--batch", "--pinentry-mode", "loopback",
                               "--passphrase", "", *args], input=data, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout

    def clearsign(self, text: str, *extra: str) -> bytes:
        return self.run("--digest-algo", "SHA512", *extra, "--clearsign", data=text.encode())


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpg")
    return Gpg(root / "archive", "labkit test archive <archive@example.invalid>"), \
        Gpg(root / "stranger", "someone else <stranger@example.invalid>")


def packages_xz(data: bytes) -> bytes:
    return lzma.compress((f"Package: socat\nVersion: 1.7.3.1-1\nArchitecture: amd64\n"
                          f"Filename: pool/universe/s/socat/{DEB_NAME}\nSize: {len(data)}\n"
                          f"SHA256: {sha256(data)}\n\n").encode())


def release(index: bytes, suite: str = "xenial", extra: str = "") -> str:
    return (f"Origin: Ubuntu\nLabel: Ubuntu\nSuite: {suite}\nCodename: {suite}\nDate: Thu, 21 Apr 2016 23:23:46 UTC\n"
            f"Architectures: amd64 i386\nComponents: main universe\n{extra}SHA256:\n"
            f" {'0' * 64}            1234 main/binary-amd64/Packages.xz\n"
            f" {hashlib.sha256(index).hexdigest()} {len(index):>15} {INDEX_PATH}\n")


def archive(srv, inrelease: bytes, index: bytes, deb: bytes = DEB) -> str:
    """Serves the archive; returns the published: URL of the index."""
    srv.add("/ubuntu/dists/xenial/InRelease", inrelease)
    srv.add(f"/ubuntu/pool/universe/s/socat/{DEB_NAME}", deb)
    return srv.add(f"/ubuntu/dists/xenial/{INDEX_PATH}", index)


def pin(srv, tmp_path, test_key):
    """bundle.lock on a lock whose archive-keys/ trusts `test_key` (a public key file) besides Ubuntu's keys."""
    if test_key:
        (tmp_path / "archive-keys").mkdir()
        (tmp_path / "archive-keys" / "test-archive.asc").write_bytes(test_key.read_bytes())
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [file_entry(
        "socat", f"debs/base/{DEB_NAME}", [f"{srv.url}/ubuntu/pool/universe/s/socat/{DEB_NAME}"],
        extra=f"  published: {srv.url}/ubuntu/dists/xenial/{INDEX_PATH}")])
    before = lock_file.read_text()
    proc = invoke("bundle.lock", "--lock", lock_file, "--dest", tmp_path / "bundle")
    return proc, lock_file, before


def test_a_valid_signed_chain_pins_the_package(srv, tmp_path, keys):
    archive_key, _ = keys
    index = packages_xz(DEB)
    archive(srv, archive_key.clearsign(release(index)), index)
    proc, lock_file, _ = pin(srv, tmp_path, archive_key.public)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    socat = lock.load(lock_file).get("socat")
    assert (socat.sha256, socat.size) == (sha256(DEB), len(DEB))
    assert "signed index" in lock_file.read_text()
    assert [s.path for s in srv.seen][:2] == ["/ubuntu/dists/xenial/InRelease", f"/ubuntu/dists/xenial/{INDEX_PATH}"]


@pytest.mark.parametrize("case, words", [
    ("tampered index", "does not match the SHA256 its signed InRelease gives"),
    ("tampered package", "do not match the lock"),
    ("another key", "which is not a trusted archive key"),
    ("altered InRelease", "BAD signature"),
    ("expired signature", "expired on 2020-01-03"),
    ("another suite", "speaks for suite bionic, not xenial"),
    ("stale", "is stale (Valid-Until"),
    ("not trusted at all", "which is not a trusted archive key"),
])
def test_a_broken_chain_is_one_line_and_pins_nothing(srv, tmp_path, keys, case, words):
    archive_key, stranger = keys
    index, deb, test_key = packages_xz(DEB), DEB, archive_key.public
    inrelease = archive_key.clearsign(release(index))
    if case == "tampered index":  # index and package replaced together, the InRelease left alone
        deb = DEB[:-1] + b"!"
        index = packages_xz(deb)
    elif case == "tampered package":
        deb = DEB[:-1] + b"!"
    elif case == "another key":
        inrelease = stranger.clearsign(release(index))
    elif case == "altered InRelease":
        inrelease = inrelease.replace(b"Label: Ubuntu", b"Label: Ubuntv")
    elif case == "expired signature":
        inrelease = archive_key.clearsign(release(index), "--faked-system-time", "20200102T000000!",
                                          "--default-sig-expire", "1d")
    elif case == "another suite":
        inrelease = archive_key.clearsign(release(index, suite="bionic"))
    elif case == "stale":
        inrelease = archive_key.clearsign(release(index, extra="Valid-Until: Sat, 01 Jan 2022 00:00:00 UTC\n"))
    elif case == "not trusted at all":  # the test key is not added: Ubuntu's keys alone do not know it
        test_key = None
    archive(srv, inrelease, index, deb)
    proc, lock_file, before = pin(srv, tmp_path, test_key)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("labkit: ")]
    assert len(lines) == 1 and lines[0].startswith("labkit: socat") and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Fix: " in proc.stderr
    assert lock_file.read_text() == before  # no pin written
    assert not (tmp_path / "bundle" / "debs/base" / DEB_NAME).exists()


def test_the_signature_check_agrees_with_gnupg(keys, tmp_path):
    """labkit's verifier and gpgv accept and refuse the same InRelease files."""
    from labkit.bundle import openpgp

    archive_key, stranger = keys
    gpgv = need_binary("gpgv")
    keyring = tmp_path / "trusted.gpg"
    keyring.write_bytes(archive_key.run("--export"))
    key = openpgp.load_key(archive_key.public.read_text())
    good = archive_key.clearsign(release(b"x", extra="Note:  trailing spaces  \n - dash line\n"))
    for signed, expect in ((good, True), (good.replace(b"trailing", b"Trailing"), False),
                           (stranger.clearsign(release(b"x")), False)):
        path = tmp_path / "InRelease"
        path.write_bytes(signed)
        by_gpgv = subprocess.run([gpgv, "--keyring", str(keyring), str(path)], capture_output=True).returncode == 0
        try:
            text, _ = openpgp.verify_cleartext(signed.decode(), [key], time.time())
            by_labkit = "Note:  trailing spaces" in text
        except openpgp.SignatureError:
            by_labkit = False
        assert by_gpgv == by_labkit == expect


def test_audit_re_derives_the_pin_through_the_signed_chain(srv, tmp_path, keys):
    archive_key, _ = keys
    index = packages_xz(DEB)
    archive(srv, archive_key.clearsign(release(index)), index)
    proc, lock_file, _ = pin(srv, tmp_path, archive_key.public)
    assert proc.returncode == 0, proc.stderr
    pinned = lock_file.read_text()
    same = invoke("bundle.lock", "--lock", lock_file, "--audit")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "1 same" in same.stdout and "signed-index" in same.stdout
    # upstream now publishes another socat under the same name, properly signed: the audit says so
    other = packages_xz(DEB + b"!")
    archive(srv, archive_key.clearsign(release(other)), other)
    differs = invoke("bundle.lock", "--lock", lock_file, "--audit")
    assert differs.returncode == 1
    assert differs.stderr.strip().splitlines()[-1].startswith("labkit: 1 pin(s) differ from their source now: socat")
    assert "DIFFERENT" in differs.stdout
    assert lock_file.read_text() == pinned  # the audit changes nothing
