"""Check an OpenPGP cleartext signature (an apt `InRelease` file) against pinned RSA keys.

Narrow on purpose: what Ubuntu's archive uses, and nothing else. Version 4 signatures of type 0x01
(canonical text) made by an RSA primary key, hashed with SHA-256/384/512 (RFC 4880 sections 5.2,
7 and 11.1). Trust is anchored in the keys' fingerprints, which labkit pins as data, so the keys' own
self-signatures are never consulted: that is why this is not a general OpenPGP library (Ubuntu's 2012
key carries SHA-1 self-signatures, which current libraries rightly refuse, though its signatures on
the archive use SHA-512). The RSA arithmetic is the `cryptography` package's. docs/bundle.md says why.

The bytes come over plain HTTP, so every length read from them is checked before it is used (`_cut`):
a damaged or hostile packet is one SignatureError, never an IndexError or a short read. Parsing is
strict where RFC 4880 fixes a size: a subpacket labkit reads has exactly its size, a number (MPI) has
exactly its stated bits, and the numbers of a signature or key fill its packet to the last byte.
"""
from __future__ import annotations

import base64
import hashlib
import re
import struct
import time
from dataclasses import dataclass
from typing import Optional

from labkit.errors import LabkitError

HASHES = {8: "sha256", 9: "sha384", 10: "sha512"}  # RFC 4880 9.4; MD5, SHA-1 and others are refused
RSA_ALGOS = (1, 3)                                   # RSA (encrypt or sign), RSA sign-only
SIGNATURE_MPIS = {1: 1, 3: 1, 17: 2}                 # numbers in a signature: RSA s; DSA r, s (RFC 4880 5.2.2)
CLOCK_SKEW = 24 * 3600                               # a signature "from the future" beyond this is refused
# Subpackets labkit reads (RFC 4880 5.2.3.4, .10, .5; RFC 9580 5.2.3.35 for the v4 issuer fingerprint),
# with their exact sizes, and the ones it may safely ignore even when marked critical (policy URI,
# signer's user ID: informative only). A critical notation (20) is never understood.
SUBPACKET_SIZES = {2: 4, 3: 4, 16: 8, 33: 21}
CRITICAL_OK = {2, 3, 16, 33, 26, 28}


class SignatureError(LabkitError):
    """The signature does not vouch for the text; `.message` says why in words for one line."""


@dataclass(frozen=True)
class Key:
    fingerprint: str   # 40 upper-case hex digits
    n: int
    e: int
    created: int

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]


@dataclass(frozen=True)
class Signature:
    issuer: Optional[str]       # a fingerprint (40 hex) or a key id (16 hex), upper-case
    hash_name: Optional[str]
    created: Optional[int]
    expires: Optional[int]      # seconds after `created`; None = never
    left16: bytes
    value: bytes
    signed_part: bytes          # version .. hashed subpackets: hashed after the text
    problem: Optional[str]      # why it can never be valid (weak hash, unknown critical subpacket...)


# --- armor and packets ------------------------------------------------------------------------------

def crc24(data: bytes) -> int:
    """The armor checksum (RFC 4880 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text: str, kind: str) -> bytes:
    """The bytes of the first `-----BEGIN PGP <kind>-----` block (headers skipped; a checksum, if
    present, must match: gpgv refuses a block whose checksum does not)."""
    text = text.replace("\r\n", "\n")
    m = re.search(rf"-----BEGIN PGP {kind}-----\n(.*?)-----END PGP {kind}-----", text, re.S)
    if not m:
        raise SignatureError(f"has no PGP {kind.lower()} block", "")
    body = m.group(1).split("\n\n", 1)[-1] if re.match(r"^[A-Za-z-]+: ", m.group(1)) else m.group(1)
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    checksum = [ln[1:] for ln in lines if ln.startswith("=")]
    damaged = SignatureError(f"has a damaged PGP {kind.lower()} block (not base64)", "")
    try:
        data = base64.b64decode("".join(ln for ln in lines if not ln.startswith("=")), validate=True)
        crc = base64.b64decode(checksum[0], validate=True) if checksum else None
    except ValueError:
        raise damaged from None
    if crc is not None and (len(checksum) > 1 or len(crc) != 3 or int.from_bytes(crc, "big") != crc24(data)):
        raise SignatureError(f"has a damaged PGP {kind.lower()} block (its checksum does not match)", "")
    return data


def _cut(data: bytes, at: int, size: int) -> bytes:
    """data[at:at + size], or SignatureError when the data ends first (never a short read)."""
    if at + size > len(data):
        raise SignatureError("has a truncated OpenPGP packet", "")
    return data[at:at + size]


def _uint(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(_cut(data, at, size), "big")


def _length(data: bytes, i: int, subpacket: bool = False) -> tuple[int, int]:
    """A new-format packet or a subpacket length at data[i] (RFC 4880 4.2.2, 5.2.3.1): (length, next i).
    224-254 start a two-byte subpacket length, but a partial length in a packet header."""
    first = _uint(data, i, 1)
    if first < 192:
        return first, i + 1
    if first < 224 or (subpacket and first < 255):
        return ((first - 192) << 8) + _uint(data, i + 1, 1) + 192, i + 2
    if first == 255:
        return _uint(data, i + 1, 4), i + 5
    raise SignatureError("uses partial packet lengths, which signatures never need", "")


def packets(data: bytes):
    """(tag, body) for each OpenPGP packet, old and new header formats (RFC 4880 4.2)."""
    i = 0
    while i < len(data):
        head = data[i]
        if not head & 0x80:
            raise SignatureError("has a damaged OpenPGP packet", "")
        if head & 0x40:  # new format
            tag = head & 0x3F
            length, i = _length(data, i + 1)
        else:
            tag, kind = (head >> 2) & 0x0F, head & 0x03
            if kind == 3:
                raise SignatureError("has an OpenPGP packet of indeterminate length", "")
            size = (1, 2, 4)[kind]
            length, i = _uint(data, i + 1, size), i + 1 + size
        yield tag, _cut(data, i, length)
        i += length


def _mpi(body: bytes, at: int) -> tuple[int, int]:
    """A multiprecision integer (RFC 4880 3.2): (value, next offset). Its bit count must be exact."""
    bits = _uint(body, at, 2)
    size = (bits + 7) // 8
    value = _uint(body, at + 2, size)
    if value.bit_length() != bits:
        raise SignatureError("has a malformed number (MPI) in an OpenPGP packet", "")
    return value, at + 2 + size


def _end(body: bytes, at: int, what: str) -> None:
    if at != len(body):
        raise SignatureError(f"has {len(body) - at} stray byte(s) after the numbers of its {what}", "")


def load_key(armored: str) -> Key:
    """The RSA primary key of an armored public key block."""
    for tag, body in packets(dearmor(armored, "PUBLIC KEY BLOCK")):
        if tag == 6:
            if _uint(body, 0, 1) != 4 or _uint(body, 5, 1) not in RSA_ALGOS:
                raise SignatureError("is not a version 4 RSA key", "")
            n, at = _mpi(body, 6)
            e, at = _mpi(body, at)
            _end(body, at, "public key packet")
            if len(body) > 0xFFFF:  # the fingerprint hashes the length as two bytes (RFC 4880 12.2)
                raise SignatureError("has a public key packet too long for a version 4 key", "")
            fpr = hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).hexdigest().upper()
            return Key(fingerprint=fpr, n=n, e=e, created=_uint(body, 1, 4))
    raise SignatureError("has no public key packet", "")


def _subpackets(data: bytes):
    """(type, critical, body) for each signature subpacket, each of a known type checked for its size."""
    i = 0
    while i < len(data):
        length, i = _length(data, i, subpacket=True)
        if length == 0:
            raise SignatureError("has a damaged signature subpacket", "")
        sub = _cut(data, i, length)
        kind, body = sub[0] & 0x7F, sub[1:]
        if kind in SUBPACKET_SIZES and len(body) != SUBPACKET_SIZES[kind]:
            raise SignatureError(f"has a damaged signature subpacket (type {kind}: {len(body)} bytes, "
                                 f"not {SUBPACKET_SIZES[kind]})", "")
        yield kind, bool(sub[0] & 0x80), body
        i += length


def _notation_name(data: bytes) -> str:
    """The name of a notation subpacket (RFC 4880 5.2.3.16), printable, for an error line."""
    name_len, value_len = _uint(data, 4, 2), _uint(data, 6, 2)
    if 8 + name_len + value_len != len(data):
        raise SignatureError("has a damaged signature subpacket (a notation)", "")
    return re.sub(r"[^\x21-\x7e]", "?", data[8:8 + name_len].decode("latin-1"))[:64]


def _signature(body: bytes) -> Signature:
    version = _uint(body, 0, 1)
    if version != 4:  # a damaged packet to labkit, whoever signed it (gpgv refuses unknown versions too)
        raise SignatureError(f"has a version {version} signature packet (labkit reads version 4 only)", "")
    sig_type, algo, hash_algo = _cut(body, 1, 3)
    hashed_len = _uint(body, 4, 2)
    hashed = _cut(body, 6, hashed_len)
    at = 6 + hashed_len
    unhashed = _cut(body, at + 2, _uint(body, at, 2))
    at += 2 + len(unhashed)
    left16 = _cut(body, at, 2)
    at += 2
    numbers = []
    for _ in range(SIGNATURE_MPIS.get(algo, 0)):
        value, at = _mpi(body, at)
        numbers.append(value)
    if algo in SIGNATURE_MPIS:
        _end(body, at, "signature")
    fingerprints, key_ids = set(), set()
    created = expires = problem = None
    for area, subs in (("hashed", hashed), ("unhashed", unhashed)):
        for kind, critical, data in _subpackets(subs):
            if kind == 33:
                if data[0] != 4:
                    raise SignatureError("has a damaged signature subpacket (issuer fingerprint)", "")
                fingerprints.add(data[1:].hex().upper())
            elif kind == 16:
                key_ids.add(data.hex().upper())
            elif area == "hashed" and kind == 2 and created is None:
                created = _uint(data, 0, 4)
            elif area == "hashed" and kind == 3 and expires is None:
                expires = _uint(data, 0, 4) or None
            if critical and kind == 20:
                problem = problem or f"carries a critical notation {_notation_name(data)} that labkit does not know"
            elif critical and kind not in CRITICAL_OK:
                problem = problem or f"carries a critical subpacket of type {kind} that labkit does not know"
    issuer = min(fingerprints) if fingerprints else min(key_ids) if key_ids else None
    if len(fingerprints) > 1 or len({f[-16:] for f in fingerprints} | key_ids) > 1:
        problem = problem or "names more than one issuer"
    if algo not in RSA_ALGOS:
        problem = problem or f"uses public-key algorithm {algo}, not RSA"
    if hash_algo not in HASHES:
        problem = problem or f"uses a weak or unknown digest (OpenPGP hash algorithm {hash_algo})"
    if sig_type != 0x01:
        problem = problem or f"is of type 0x{sig_type:02x}, not a signature of a text"
    if created is None:
        problem = problem or "has no creation time"
    value = numbers[0] if algo in RSA_ALGOS else 0
    return Signature(issuer=issuer, hash_name=HASHES.get(hash_algo), created=created, expires=expires,
                     left16=left16, value=value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"),
                     signed_part=body[:6 + hashed_len], problem=problem)


# --- cleartext --------------------------------------------------------------------------------------

def split_cleartext(text: str) -> tuple[str, list[Signature]]:
    """(the signed text as apt reads it, with '\\n' line ends; its signatures)."""
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        start = lines.index("-----BEGIN PGP SIGNED MESSAGE-----")
        end = lines.index("-----BEGIN PGP SIGNATURE-----", start)
    except ValueError:
        raise SignatureError("is not signed (no PGP SIGNED MESSAGE / SIGNATURE block)", "") from None
    i = start + 1
    while i < end and lines[i] != "":  # armor headers ("Hash: SHA512"), then one empty line
        i += 1
    body = [ln[2:] if ln.startswith("- ") else ln for ln in lines[i + 1:end]]
    sigs = []
    for tag, packet in packets(dearmor("\n".join(lines[end:]), "SIGNATURE")):
        if tag != 2:  # gpgv refuses a signature block holding anything else
            raise SignatureError(f"has an OpenPGP packet of type {tag} among its signatures", "")
        sigs.append(_signature(packet))
    if not sigs:
        raise SignatureError("has no signature packet", "")
    return "\n".join(body), sigs


def _canonical(text: str) -> bytes:
    """RFC 4880 7.1: trailing spaces and tabs removed, lines joined with CR LF, no final line end."""
    return "\r\n".join(ln.rstrip(" \t") for ln in text.split("\n")).encode("utf-8")


def _invalid(sig: Signature, key: Key, data: bytes) -> Optional[str]:
    """Why `sig` by `key` does not vouch for `data`, or None when it does."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    algo = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[sig.hash_name]
    message = data + sig.signed_part + b"\x04\xff" + struct.pack(">I", len(sig.signed_part))
    size = (key.n.bit_length() + 7) // 8
    try:
        rsa.RSAPublicNumbers(key.e, key.n).public_key().verify(
            sig.value.rjust(size, b"\0"), message, padding.PKCS1v15(), algo)
    except (InvalidSignature, ValueError):
        return f"has a BAD signature by {key.key_id}: its text was altered after signing"
    # the digest's first two bytes, stored unsigned beside the value (RFC 4880 5.2.3): gpgv ignores them
    if hashlib.new(sig.hash_name, message).digest()[:2] != sig.left16:
        return f"has a signature by {key.key_id} whose digest check bytes are damaged"
    return None


def verify_cleartext(text: str, keys, now: Optional[float] = None) -> tuple[str, Key]:
    """The signed text and the trusted key that vouches for it. Raises SignatureError, with the reason
    as words to follow the file's name, when no signature by a trusted key is valid, or any is bad."""
    now = time.time() if now is None else now
    body, sigs = split_cleartext(text)
    data = _canonical(body)
    good, reasons = None, []
    for sig in sigs:
        key = next((k for k in keys if sig.issuer and k.fingerprint.endswith(sig.issuer)), None)
        if key is None:
            reasons.append(f"is signed by key {sig.issuer or '(no issuer)'}, which is not a trusted archive key")
            continue
        if sig.problem:
            raise SignatureError(f"has a signature by {key.key_id} that {sig.problem}", "")
        invalid = _invalid(sig, key, data)
        if invalid:
            raise SignatureError(invalid, "")
        if sig.created < key.created:
            raise SignatureError(f"has a signature by {key.key_id} dated before the key existed", "")
        if sig.expires is not None and sig.created + sig.expires < now:
            stamp = time.strftime("%Y-%m-%d", time.gmtime(sig.created + sig.expires))
            reasons.append(f"has a signature by {key.key_id} that expired on {stamp}")
            continue
        if sig.created > now + CLOCK_SKEW:
            reasons.append(f"has a signature by {key.key_id} dated in the future (check this computer's clock)")
            continue
        good = good or key
    if good is None:
        raise SignatureError("; ".join(dict.fromkeys(reasons)), "")
    return body, good
