"""T0: the InRelease checker (labkit/bundle/openpgp.py) and aptchain.read_index on real Ubuntu files
(tests/data/inrelease/), on those files with one byte changed, and on malformed signature packets, which a
man in the middle can send (the index URLs are plain HTTP): one SignatureError line, never a traceback,
never an acceptance. tests/t1/test_bundle_aptchain.py gives the same files and flips to gpgv."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from labkit.bundle import aptchain, openpgp
from labkit.errors import LabkitError
from tests.t0.test_bundle_trust import UBUNTU_2012, UBUNTU_2018

DATA = Path(__file__).resolve().parent.parent / "data" / "inrelease"
XENIAL_BACKPORTS = DATA / "ubuntu-xenial-backports-2022-05-12.InRelease"
JAMMY_SECURITY = DATA / "ubuntu-jammy-security-2026-06-06.InRelease"
# (file, its suite, the key that signed it, a small index it lists: path and the bytes its SHA256 fixes)
REAL = [
    (XENIAL_BACKPORTS, "xenial-backports", UBUNTU_2012, "universe/source/Release",
     b"Archive: xenial-backports\nVersion: 16.04\nComponent: universe\nOrigin: Ubuntu\nLabel: Ubuntu\n"
     b"Architecture: source\n"),
    (JAMMY_SECURITY, "jammy-security", UBUNTU_2018, "universe/source/Release",
     b"Archive: jammy-security\nVersion: 22.04\nComponent: universe\nOrigin: Ubuntu\nLabel: Ubuntu\n"
     b"Architecture: source\n"),
]
NOW = 1796083200  # 2026-12-01 UTC, after both signatures were made


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def armor(data: bytes, kind: str = "SIGNATURE") -> str:
    """An armored block as GnuPG writes it: 64 columns, then the CRC-24 checksum (RFC 4880 6)."""
    b64 = base64.b64encode(data).decode()
    crc = base64.b64encode(openpgp.crc24(data).to_bytes(3, "big")).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN PGP {kind}-----\n\n" + "\n".join(lines) + f"\n={crc}\n-----END PGP {kind}-----\n"


def with_signature(text: str, data: bytes) -> str:
    """The cleartext `text` with its signature block replaced by `data`, re-armored with a correct checksum."""
    return text[:text.index("-----BEGIN PGP SIGNATURE-----")] + armor(data)


def packet_spans(data: bytes) -> list:
    """(start, end, body) of each packet in `data`, as labkit frames the unchanged bytes."""
    spans, start = [], 0
    for _tag, body in openpgp.packets(data):
        end = data.index(body, start) + len(body)
        spans.append((start, end, body))
        start = end
    return spans


def check(text: str):
    return openpgp.verify_cleartext(text, aptchain.trusted_keys(), NOW)


def reader(inrelease: bytes, index: bytes):
    """What read_index fetches: the InRelease, then the index."""
    return lambda url: inrelease if url.endswith("/InRelease") else index


# --- the real files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path, suite, fingerprint, _index, _content", REAL, ids=lambda v: getattr(v, "name", None))
def test_a_real_inrelease_is_accepted_as_it_is(path, suite, fingerprint, _index, _content):
    text = text_of(path)
    body, key = check(text)
    assert key.fingerprint == fingerprint
    assert aptchain.fields(body)["Suite"] == suite
    # the re-armoring the flip tests use gives back the file's own block: checksum and layout as GnuPG's
    original = text[text.index("-----BEGIN PGP SIGNATURE-----"):].replace("Version: GnuPG v1\n", "")
    assert armor(openpgp.dearmor(text, "SIGNATURE")) == original


@pytest.mark.parametrize("path, suite, fingerprint, _index, _content", REAL, ids=lambda v: getattr(v, "name", None))
def test_one_changed_byte_of_the_signed_text_is_a_bad_signature(path, suite, fingerprint, _index, _content):
    text = text_of(path)
    for needle, other in ((f"Suite: {suite}", f"Suite: {suite[:-1]}X"), ("Label: Ubuntu", "Label: Ubuntv"),
                          ("\nAcquire-By-Hash: yes", "\nAcquire-By-Hash: yez")):
        assert text.count(needle) == 1 and len(needle.encode()) == len(other.encode())
        with pytest.raises(openpgp.SignatureError, match=f"has a BAD signature by {fingerprint[-16:]}"):
            check(text.replace(needle, other))
    line = text.splitlines().index("SHA256:") + 5  # a hex digit in one SHA256 line
    lines = text.split("\n")
    lines[line] = lines[line].replace(lines[line][1], "0" if lines[line][1] != "0" else "1", 1)
    with pytest.raises(openpgp.SignatureError, match="BAD signature"):
        check("\n".join(lines))


@pytest.mark.parametrize("path", [XENIAL_BACKPORTS, JAMMY_SECURITY], ids=lambda p: p.name)
def test_every_flipped_byte_of_a_real_signature_is_one_line_and_never_accepted(path):
    """Each byte of the signature block, in turn, replaced by its complement (XOR 0xFF) and re-armored with
    a correct checksum: the checker refuses with one SignatureError (any other exception fails the test).
    Only a change inside the 2004 DSA signature of the xenial file can leave the file accepted: labkit
    does not trust that key and ignores its signature, as gpgv does with a key it lacks; the 2012
    signature beside it still vouches for the unchanged text."""
    text = text_of(path)
    body, _ = check(text)
    data = openpgp.dearmor(text, "SIGNATURE")
    untrusted = [(start, end) for start, end, sig in packet_spans(data) if sig[2] == 17]  # algorithm: DSA
    refused = accepted = 0
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        try:
            again, key = check(with_signature(text, bytes(flipped)))
        except openpgp.SignatureError as exc:
            assert exc.message and "\n" not in exc.message
            refused += 1
            continue
        assert any(start <= i < end for start, end in untrusted), f"byte {i} flipped and still accepted"
        assert again == body and key.fingerprint == UBUNTU_2012
        accepted += 1
    assert refused + accepted == len(data)
    if path == JAMMY_SECURITY:
        assert accepted == 0 and len(data) == 566
    else:
        assert [end - start for start, end in untrusted] == [72] and 0 < accepted < 72


# --- malformed packets, built from the parts of the real 2018 signature --------------------------------

def _parts():
    """The real jammy-security signature taken apart: hashed area, unhashed area, left 16 bits, the number."""
    (_, _, body), = packet_spans(openpgp.dearmor(text_of(JAMMY_SECURITY), "SIGNATURE"))
    hashed_len = int.from_bytes(body[4:6], "big")
    at = 6 + hashed_len
    unhashed_len = int.from_bytes(body[at:at + 2], "big")
    return body[:4], body[6:at], body[at + 2:at + 2 + unhashed_len], body[at + 2 + unhashed_len:]


def sub(kind: int, data: bytes, critical: bool = False) -> bytes:
    """A signature subpacket (RFC 4880 5.2.3.1; under 191 bytes)."""
    return bytes([len(data) + 1, kind | (0x80 if critical else 0)]) + data


def packet(tag: int, body: bytes) -> bytes:
    """A new-format packet (RFC 4880 4.2.2)."""
    if len(body) < 192:
        return bytes([0xC0 | tag, len(body)]) + body
    n = len(body) - 192
    return bytes([0xC0 | tag, (n >> 8) + 192, n & 0xFF]) + body


def signature(head=None, hashed=None, unhashed=None, tail=None) -> bytes:
    """A version 4 signature packet: the real one with some parts replaced."""
    real = _parts()
    head, hashed, unhashed, tail = (real[0] if head is None else head, real[1] if hashed is None else hashed,
                                    real[2] if unhashed is None else unhashed, real[3] if tail is None else tail)
    size = len(hashed).to_bytes(2, "big"), len(unhashed).to_bytes(2, "big")
    return packet(2, head + size[0] + hashed + size[1] + unhashed + tail)


FPR = sub(33, b"\x04" + bytes.fromhex(UBUNTU_2018))
CREATED = sub(2, (1780768132).to_bytes(4, "big"))  # the real signature's creation time
NOTATION = b"\x80\0\0\0" + (15).to_bytes(2, "big") + (3).to_bytes(2, "big") + b"foo@example.org" + b"bar"


def malformed_cases():
    real = _parts()
    bits = int.from_bytes(real[3][2:4], "big")
    return [
        ("a creation-time subpacket of 3 bytes", signature(hashed=FPR + sub(2, b"\x6a\x24\x5d")),
         "has a damaged signature subpacket (type 2: 3 bytes, not 4)"),
        ("an expiration subpacket of 5 bytes", signature(hashed=FPR + CREATED + sub(3, b"\0" * 5)),
         "(type 3: 5 bytes, not 4)"),
        ("an issuer subpacket of 7 bytes", signature(unhashed=sub(16, b"\x87" * 7)), "(type 16: 7 bytes, not 8)"),
        ("an issuer fingerprint of 20 bytes", signature(hashed=sub(33, bytes.fromhex(UBUNTU_2018)) + CREATED),
         "(type 33: 20 bytes, not 21)"),
        ("a new-format header with no length byte", b"\xc2", "has a truncated OpenPGP packet"),
        ("an old-format header cut inside its length", b"\x89\x02", "has a truncated OpenPGP packet"),
        ("a 3-byte signature packet", packet(2, b"\x04\x01\x01"), "has a truncated OpenPGP packet"),
        ("an empty signature packet", packet(2, b""), "has a truncated OpenPGP packet"),
        ("a packet longer than the block", signature()[:-1], "has a truncated OpenPGP packet"),
        ("a hashed area longer than the packet", packet(2, real[0] + b"\x01\x00" + real[1]),
         "has a truncated OpenPGP packet"),
        ("a subpacket running past its area", signature(hashed=FPR + b"\x30\x02\0\0\0\0"),
         "has a truncated OpenPGP packet"),
        ("a subpacket of length 0", signature(hashed=FPR + CREATED + b"\x00"), "has a damaged signature subpacket"),
        ("a partial length", b"\xc2\xe1" + b"\0" * 2, "uses partial packet lengths"),
        ("a number longer than the packet", signature(tail=real[3][:2] + b"\x20\x00" + real[3][4:]),
         "has a truncated OpenPGP packet"),
        ("a stray byte after the number", signature(tail=real[3] + b"\0"),
         "has 1 stray byte(s) after the numbers of its signature"),
        ("a bit count that is not the number's",
         signature(tail=real[3][:2] + (bits - 1).to_bytes(2, "big") + real[3][4:]),
         "has a malformed number (MPI)"),
        ("a version 3 signature", signature(head=b"\x03" + real[0][1:]), "has a version 3 signature packet"),
        ("a key packet among the signatures", packet(6, b"\x04") + signature(),
         "has an OpenPGP packet of type 6 among its signatures"),
        ("a critical notation", signature(hashed=FPR + CREATED + sub(20, NOTATION, critical=True)),
         "has a signature by 871920D1991BC93C that carries a critical notation foo@example.org "
         "that labkit does not know"),
        ("a critical notation cut short", signature(hashed=FPR + CREATED + sub(20, NOTATION[:-1], critical=True)),
         "has a damaged signature subpacket (a notation)"),
        ("an unknown critical subpacket in the unhashed area",
         signature(unhashed=real[2] + sub(99, b"x", critical=True)),
         "carries a critical subpacket of type 99 that labkit does not know"),
        ("an issuer key id that is not the fingerprint's", signature(unhashed=sub(16, bytes.fromhex(UBUNTU_2012)[-8:])),
         "has a signature by 871920D1991BC93C that names more than one issuer"),
    ]


@pytest.mark.parametrize("case, data, words", malformed_cases(), ids=[c[0] for c in malformed_cases()])
def test_a_malformed_signature_is_one_line_through_the_checker_and_read_index(case, data, words):
    text = with_signature(text_of(JAMMY_SECURITY), data)
    with pytest.raises(openpgp.SignatureError) as caught:
        check(text)
    assert words in caught.value.message and "\n" not in caught.value.message
    # bundle.lock and --audit read it through aptchain.read_index: one line, nothing pinned
    url = "http://archive.ubuntu.com/ubuntu/dists/jammy-security/universe/source/Release"
    with pytest.raises(LabkitError) as line:
        aptchain.read_index(url, reader(text.encode(), b""), aptchain.trusted_keys(), NOW)
    assert line.value.message == f"{url.rsplit('/', 3)[0]}/InRelease {caught.value.message}; nothing was pinned from it"


def test_the_real_signature_rebuilt_from_its_parts_is_accepted():
    """The builder above changes only what each case names: unchanged, it gives back a valid signature."""
    text = text_of(JAMMY_SECURITY)
    assert check(with_signature(text, signature()))[1].fingerprint == UBUNTU_2018
    assert signature()[3:] == openpgp.dearmor(text, "SIGNATURE")[3:]  # the same body (new-format header)


def test_an_armor_checksum_that_does_not_match_is_refused():
    text = text_of(JAMMY_SECURITY)
    damaged = text.replace("\n=22XC\n", "\n=22XD\n")
    assert damaged != text
    with pytest.raises(openpgp.SignatureError, match=r"damaged PGP signature block \(its checksum does not match\)"):
        check(damaged)
    assert check(text.replace("\n=22XC\n", "\n"))[1].fingerprint == UBUNTU_2018  # the checksum is optional, as in gpgv


# --- keys ---------------------------------------------------------------------------------------------

def _key_packets() -> tuple[bytes, bytes]:
    """The 2012 key block: (its primary key packet with header, everything after it)."""
    data = openpgp.dearmor((aptchain.KEY_DIR / "ubuntu-archive-2012.asc").read_text(), "PUBLIC KEY BLOCK")
    (_, end, _), *_ = packet_spans(data)
    return data[:end], data[end:]


@pytest.mark.parametrize("case, mangle, words", [
    ("cut inside the key packet", lambda key, rest: key[:200], "has a truncated OpenPGP packet"),
    ("a key packet framed but cut inside its modulus", lambda key, rest: packet(6, key[3:200]) + rest,
     "has a truncated OpenPGP packet"),
    ("a key packet of 3 bytes", lambda key, rest: packet(6, key[3:6]), "has a truncated OpenPGP packet"),
    ("a stray byte after the exponent", lambda key, rest: packet(6, key[3:] + b"\0") + rest,
     "has 1 stray byte(s) after the numbers of its public key packet"),
])
def test_a_truncated_or_padded_key_packet_is_one_line(tmp_path, case, mangle, words):
    key, rest = _key_packets()
    assert key[:3] == b"\x99\x02\x0d"  # old format, two-byte length 525: the slices above rely on it
    assert openpgp.load_key(armor(packet(6, key[3:]) + rest, "PUBLIC KEY BLOCK")).fingerprint == UBUNTU_2012
    (tmp_path / "mirror.asc").write_text(armor(mangle(key, rest), "PUBLIC KEY BLOCK"))
    with pytest.raises(LabkitError) as line:
        aptchain.trusted_keys(tmp_path)
    assert line.value.message == f"the archive key {tmp_path / 'mirror.asc'} {words}"


# --- aptchain.read_index on the real files ----------------------------------------------------------

@pytest.mark.parametrize("path, suite, fingerprint, index, content", REAL, ids=lambda v: getattr(v, "name", None))
def test_read_index_takes_an_index_through_a_real_inrelease(path, suite, fingerprint, index, content):
    url = f"http://archive.ubuntu.com/ubuntu/dists/{suite}/{index}"
    inrelease = path.read_bytes()
    assert aptchain.read_index(url, reader(inrelease, content), aptchain.trusted_keys(), NOW) == content
    changed = content.replace(b"Label: Ubuntu", b"Label: Ubuntv")
    with pytest.raises(LabkitError, match=f"the index {url} does not match the SHA256 its signed InRelease gives"):
        aptchain.read_index(url, reader(inrelease, changed), aptchain.trusted_keys(), NOW)
    altered = inrelease.replace(b"Label: Ubuntu", b"Label: Ubuntv")
    with pytest.raises(LabkitError, match=f"has a BAD signature by {fingerprint[-16:]}: .*; nothing was pinned"):
        aptchain.read_index(url, reader(altered, content), aptchain.trusted_keys(), NOW)


@pytest.mark.parametrize("path, suite, fingerprint, index, content", REAL, ids=lambda v: getattr(v, "name", None))
def test_a_real_pocket_file_does_not_pass_for_its_release(path, suite, fingerprint, index, content):
    """xenial-backports and jammy-security carry Codename xenial / jammy: served at dists/xenial/ (or
    dists/jammy/) they are refused, though the signature is Ubuntu's."""
    release = suite.split("-")[0]
    url = f"http://archive.ubuntu.com/ubuntu/dists/{release}/{index}"
    with pytest.raises(LabkitError, match=f"is signed but speaks for suite {suite}, not {release}"):
        aptchain.read_index(url, reader(path.read_bytes(), content), aptchain.trusted_keys(), NOW)


@pytest.mark.parametrize("info, suite, speaks", [
    ({"Suite": "xenial", "Codename": "xenial"}, "xenial", True),
    ({"Suite": "xenial-updates", "Codename": "xenial"}, "xenial-updates", True),
    ({"Suite": "xenial-updates", "Codename": "xenial"}, "xenial", False),      # a pocket is not its release
    ({"Suite": "stable", "Codename": "bookworm"}, "bookworm", True),           # Debian: dists/bookworm
    ({"Suite": "stable", "Codename": "bookworm"}, "stable", True),
    ({"Suite": "stable-updates", "Codename": "bookworm-updates"}, "bookworm-updates", True),
    ({"Suite": "stable", "Codename": "bookworm"}, "trixie", False),
    ({"Suite": "bionic", "Codename": "bionic"}, "xenial", False),
])
def test_suite_names_the_directory_and_codename_only_a_debian_style_one(info, suite, speaks):
    assert aptchain.speaks_for(info, suite) is speaks
