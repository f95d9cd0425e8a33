"""Ubuntu's archive keys and real InRelease files (tests/data/inrelease) for the apt trust chain tests."""
from __future__ import annotations

import base64
from pathlib import Path

from labkit.bundle import openpgp


# As Ubuntu publishes them (ubuntu-keyring; the issue quotes both): 2012 and 2018 archive signing keys.
UBUNTU_2012 = "790BC7277767219C42C86F933B4FE6ACC0B21F32"


UBUNTU_2018 = "F6ECB3762474EDA9D21B7022871920D1991BC93C"


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
