"""Check an OpenPGP cleartext signature (an apt `InRelease` file) against pinned RSA keys.

Narrow on purpose: what Ubuntu's archive uses, and nothing else. Version 4 signatures of type 0x01
(canonical text) made by an RSA primary key, hashed with SHA-256/384/512 (RFC 4880 sections 5.2,
7 and 11.1). Trust is anchored in the keys' fingerprints, which labkit pins as data, so the keys' own
self-signatures are never consulted: that is why this is not a general OpenPGP library (Ubuntu's 2012
key carries SHA-1 self-signatures, which current libraries rightly refuse, though its signatures on
the archive use SHA-512). The RSA arithmetic is the `cryptography` package's. docs/bundle.md says why.
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
CLOCK_SKEW = 24 * 3600                               # a signature "from the future" beyond this is refused


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

def dearmor(text: str, kind: str) -> bytes:
    """The bytes of the first `-----BEGIN PGP <kind>-----` block (headers and checksum skipped)."""
    m = re.search(rf"-----BEGIN PGP {kind}-----\r?\n(.*?)-----END PGP {kind}-----", text, re.S)
    if not m:
        raise SignatureError(f"has no PGP {kind.lower()} block", "")
    body = m.group(1).split("\n\n", 1)[-1] if re.match(r"^[A-Za-z-]+: ", m.group(1)) else m.group(1)
    lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("=")]
    try:
        return base64.b64decode("".join(lines), validate=True)
    except ValueError:
        raise SignatureError(f"has a damaged PGP {kind.lower()} block (not base64)", "") from None


def packets(data: bytes):
    """(tag, body) for each OpenPGP packet, old and new header formats (RFC 4880 4.2)."""
    i = 0
    while i < len(data):
        head = data[i]
        if not head & 0x80:
            raise SignatureError("has a damaged OpenPGP packet", "")
        if head & 0x40:  # new format
            tag, i = head & 0x3F, i + 1
            first = data[i]
            if first < 192:
                length, i = first, i + 1
            elif first < 224:
                length, i = ((first - 192) << 8) + data[i + 1] + 192, i + 2
            elif first == 255:
                length, i = struct.unpack(">I", data[i + 1:i + 5])[0], i + 5
            else:
                raise SignatureError("uses partial packet lengths, which signatures never need", "")
        else:
            tag, kind, i = (head >> 2) & 0x0F, head & 0x03, i + 1
            if kind == 3:
                raise SignatureError("has an OpenPGP packet of indeterminate length", "")
            size = (1, 2, 4)[kind]
            length, i = int.from_bytes(data[i:i + size], "big"), i + size
        if i + length > len(data):
            raise SignatureError("has a truncated OpenPGP packet", "")
        yield tag, data[i:i + length]
        i += length


def _mpi(body: bytes, at: int) -> tuple[int, int]:
    bits = struct.unpack(">H", body[at:at + 2])[0]
    size = (bits + 7) // 8
    return int.from_bytes(body[at + 2:at + 2 + size], "big"), at + 2 + size


def load_key(armored: str) -> Key:
    """The RSA primary key of an armored public key block."""
    for tag, body in packets(dearmor(armored, "PUBLIC KEY BLOCK")):
        if tag == 6:
            if body[0] != 4 or body[5] not in RSA_ALGOS:
                raise SignatureError("is not a version 4 RSA key", "")
            n, at = _mpi(body, 6)
            e, _ = _mpi(body, at)
            fpr = hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).hexdigest().upper()
            return Key(fingerprint=fpr, n=n, e=e, created=struct.unpack(">I", body[1:5])[0])
    raise SignatureError("has no public key packet", "")


def _subpackets(data: bytes):
    i = 0
    while i < len(data):
        first = data[i]
        if first < 192:
            length, i = first, i + 1
        elif first < 255:
            length, i = ((first - 192) << 8) + data[i + 1] + 192, i + 2
        else:
            length, i = struct.unpack(">I", data[i + 1:i + 5])[0], i + 5
        if length == 0 or i + length > len(data):
            raise SignatureError("has a damaged signature subpacket", "")
        yield data[i] & 0x7F, bool(data[i] & 0x80), data[i + 1:i + length]
        i += length


def _signature(body: bytes) -> Signature:
    if body[0] != 4:
        return Signature(None, None, None, None, b"", b"", b"", f"is a version {body[0]} signature")
    sig_type, algo, hash_algo = body[1], body[2], body[3]
    hashed_len = struct.unpack(">H", body[4:6])[0]
    hashed = body[6:6 + hashed_len]
    at = 6 + hashed_len
    unhashed_len = struct.unpack(">H", body[at:at + 2])[0]
    unhashed = body[at + 2:at + 2 + unhashed_len]
    at += 2 + unhashed_len
    left16 = body[at:at + 2]
    value, _ = _mpi(body, at + 2) if algo in RSA_ALGOS else (0, 0)
    issuer = created = expires = None
    problem = None
    for area, subs in (("hashed", hashed), ("unhashed", unhashed)):
        for kind, critical, data in _subpackets(subs):
            if kind == 33 and len(data) == 21 and data[0] == 4:
                issuer = data[1:].hex().upper()
            elif kind == 16 and issuer is None:
                issuer = data.hex().upper()
            elif area == "hashed" and kind == 2:
                created = struct.unpack(">I", data)[0]
            elif area == "hashed" and kind == 3:
                expires = struct.unpack(">I", data)[0] or None
            elif area == "hashed" and critical and kind not in (2, 3, 16, 33, 20, 26, 28):
                problem = f"carries a critical subpacket of type {kind} that labkit does not know"
    if algo not in RSA_ALGOS:
        problem = problem or f"uses public-key algorithm {algo}, not RSA"
    if hash_algo not in HASHES:
        problem = problem or f"uses a weak or unknown digest (OpenPGP hash algorithm {hash_algo})"
    if sig_type != 0x01:
        problem = problem or f"is of type 0x{sig_type:02x}, not a signature of a text"
    if created is None:
        problem = problem or "has no creation time"
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
    sigs = [_signature(b) for tag, b in packets(dearmor("\n".join(lines[end:]), "SIGNATURE")) if tag == 2]
    if not sigs:
        raise SignatureError("has no signature packet", "")
    return "\n".join(body), sigs


def _canonical(text: str) -> bytes:
    """RFC 4880 7.1: trailing spaces and tabs removed, lines joined with CR LF, no final line end."""
    return "\r\n".join(ln.rstrip(" \t") for ln in text.split("\n")).encode("utf-8")


def _valid(sig: Signature, key: Key, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    algo = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[sig.hash_name]
    message = data + sig.signed_part + b"\x04\xff" + struct.pack(">I", len(sig.signed_part))
    if hashlib.new(sig.hash_name, message).digest()[:2] != sig.left16:
        return False
    size = (key.n.bit_length() + 7) // 8
    try:
        rsa.RSAPublicNumbers(key.e, key.n).public_key().verify(
            sig.value.rjust(size, b"\0"), message, padding.PKCS1v15(), algo)
    except (InvalidSignature, ValueError):
        return False
    return True


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
        if not _valid(sig, key, data):
            raise SignatureError(f"has a BAD signature by {key.key_id}: its text was altered after signing", "")
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
