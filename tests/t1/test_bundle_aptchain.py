"""bundle.lock pins Ubuntu packages only through a signed InRelease: a real archive made here, signed with
GnuPG by a key made for the test, served over real HTTP, the real `invoke bundle.lock` command line. And
labkit's signature check beside GnuPG's `gpgv` on real Ubuntu InRelease files (tests/data/inrelease/)."""
from __future__ import annotations

import hashlib
import lzma
import os
import subprocess
import time

import pytest

from tests.conftest import need_binary
from tests.t0.test_bundle_inrelease import NOW, REAL, text_of, with_signature
from tests.t1.bundle_support import file_entry, invoke, sha256, write_lock
from labkit.bundle import aptchain, lock, openpgp

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


def release(index: bytes, suite: str = "xenial", extra: str = "", codename: str = "") -> str:
    return (f"Origin: Ubuntu\nLabel: Ubuntu\nSuite: {suite}\nCodename: {codename or suite}\n"
            f"Date: Thu, 21 Apr 2016 23:23:46 UTC\n"
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
    ("a pocket of the suite", "speaks for suite xenial-updates, not xenial"),
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
    elif case == "a pocket of the suite":  # Ubuntu's xenial-updates carries Codename: xenial
        inrelease = archive_key.clearsign(release(index, suite="xenial-updates", codename="xenial"))
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


def test_a_debian_style_directory_named_by_codename_pins_through_its_codename(srv, tmp_path, keys):
    """dists/<codename>/ whose Suite is an alias (Debian's dists/bookworm says Suite: stable)."""
    archive_key, _ = keys
    index = packages_xz(DEB)
    archive(srv, archive_key.clearsign(release(index, suite="stable", codename="xenial")), index)
    proc, lock_file, _ = pin(srv, tmp_path, archive_key.public)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lock.load(lock_file).get("socat").sha256 == sha256(DEB)


def gpgv_accepts(path, keyring) -> bool:
    """gpgv's verdict as apt reads it (apt's methods/gpgv.cc, GPGVMethod::URIAcquire): fatal when there is
    no GOODSIG or any BADSIG; a signature by a key the keyring lacks (the 2004 DSA signature of xenial
    files, NO_PUBKEY) or that gpgv cannot check (ERRSIG) is passed over beside a good one."""
    status = subprocess.run([need_binary("gpgv"), "--status-fd", "1", "--keyring", str(keyring), str(path)],
                            capture_output=True, text=True).stdout
    return "\n[GNUPG:] GOODSIG " in "\n" + status and "\n[GNUPG:] BADSIG " not in "\n" + status


def labkit_accepts(signed: str, keys, now: float) -> bool:
    try:
        openpgp.verify_cleartext(signed, keys, now)
    except openpgp.SignatureError as exc:
        assert exc.message and "\n" not in exc.message
        return False
    return True


def test_the_signature_check_agrees_with_gnupg(keys, tmp_path):
    """labkit's verifier and gpgv accept and refuse the same InRelease files, but for a critical subpacket
    gpgv reads and labkit does not (docs/bundle.md lists where labkit is stricter)."""
    archive_key, stranger = keys
    keyring = tmp_path / "trusted.gpg"
    keyring.write_bytes(archive_key.run("--export"))
    key = openpgp.load_key(archive_key.public.read_text())
    text = release(b"x", extra="Note:  trailing spaces  \n - dash line\n")
    good = archive_key.clearsign(text)
    for signed, by_gpgv, by_labkit in (
            (good, True, True), (good.replace(b"trailing", b"Trailing"), False, False),
            (stranger.clearsign(release(b"x")), False, False),
            (archive_key.clearsign(text, "--sig-notation", "note@example.org=x"), True, True),
            (archive_key.clearsign(text, "--sig-notation", "!note@example.org=x"), False, False),   # critical
            (archive_key.clearsign(text, "--sig-keyserver-url", "!http://keys.example.org"), True, False)):
        path = tmp_path / "InRelease"
        path.write_bytes(signed)
        assert (gpgv_accepts(path, keyring), labkit_accepts(signed.decode(), [key], time.time())) == (by_gpgv, by_labkit)
    body, _ = openpgp.verify_cleartext(good.decode(), [key], time.time())
    assert "Note:  trailing spaces" in body


# labkit refuses what gpgv tolerates in these ways only (as docs/bundle.md says): a packet or subpacket
# longer than what holds it, bytes after a signature's numbers or a number with a wrong bit count, an
# issuer key id that is not the issuer fingerprint's, damaged digest check bytes, a reserved (type 0)
# packet among the signatures
STRICTER = ("has a truncated OpenPGP packet", "stray byte(s) after the numbers", "has a malformed number (MPI)",
            "names more than one issuer", "has a damaged signature subpacket", "digest check bytes are damaged",
            "OpenPGP packet of type 0 among")


@pytest.mark.parametrize("path, suite, fingerprint, _index, _content", REAL, ids=lambda v: getattr(v, "name", None))
def test_real_inrelease_files_and_every_flipped_signature_byte_against_gpgv(tmp_path, path, suite, fingerprint,
                                                                             _index, _content):
    """On Ubuntu's own files: both accept them as they are and refuse one changed byte; with each byte of the
    signature block flipped in turn (re-armored with a correct checksum), labkit never accepts a file gpgv
    refuses, and refuses what gpgv accepts only for the malformations listed in STRICTER."""
    keyring = tmp_path / "ubuntu.gpg"
    keyring.write_bytes(b"".join(openpgp.dearmor((aptchain.KEY_DIR / name).read_text(), "PUBLIC KEY BLOCK")
                                 for name in aptchain.ANCHORS))
    keys = aptchain.trusted_keys()
    text = text_of(path)
    assert gpgv_accepts(path, keyring) and labkit_accepts(text, keys, NOW)
    changed = tmp_path / "changed.InRelease"
    changed.write_text(text.replace("Label: Ubuntu", "Label: Ubuntv"))
    assert not gpgv_accepts(changed, keyring) and not labkit_accepts(changed.read_text(), keys, NOW)
    data = openpgp.dearmor(text, "SIGNATURE")
    flipped_file = tmp_path / "flipped.InRelease"
    stricter = []
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        signed = with_signature(text, bytes(flipped))
        flipped_file.write_text(signed)
        try:
            openpgp.verify_cleartext(signed, keys, NOW)
            assert gpgv_accepts(flipped_file, keyring), f"byte {i}: labkit accepts what gpgv refuses"
        except openpgp.SignatureError as exc:
            if gpgv_accepts(flipped_file, keyring):
                stricter.append((i, exc.message))
    assert [(i, m) for i, m in stricter if not any(words in m for words in STRICTER)] == []


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
