"""An Ubuntu/Debian Packages index, trusted only through the archive's signed InRelease (as apt does).

`published: http://archive.ubuntu.com/ubuntu/dists/xenial/universe/binary-amd64/Packages.xz` in the lock
means: fetch `dists/xenial/InRelease`, check its OpenPGP signature against Ubuntu's archive keys
(labkit/bundle/keys/, fingerprints pinned below and checked by a test), check it speaks for suite
`xenial` (its `Suite`: see speaks_for) and is not past its Valid-Until, take the index's SHA256 and
size from it, and accept the downloaded index only if it matches. Only then does a package's pin
come from the index.
"""
from __future__ import annotations

import email.utils
import hashlib
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Union

from labkit.bundle import openpgp
from labkit.errors import LabkitError

DISTS = re.compile(r"^(?P<base>https?://[^?#]+/dists/(?P<suite>[^/?#]+))/(?P<path>[^?#]+)$")
KEY_DIR = Path(__file__).parent / "keys"
# Ubuntu's archive signing keys, as Ubuntu publishes their fingerprints (ubuntu-keyring; the 2012 key is
# the one debootstrap names when it checks xenial). A key file here that is not listed is refused.
ANCHORS = {
    "ubuntu-archive-2012.asc": "790BC7277767219C42C86F933B4FE6ACC0B21F32",
    "ubuntu-archive-2018.asc": "F6ECB3762474EDA9D21B7022871920D1991BC93C",
}
# More keys to trust for one lock (a classroom's own signed apt mirror, a test archive): armored files
# in this directory beside the lock file, committed with it (the lock is already what students trust).
EXTRA_KEYS_DIR = "archive-keys"

Reader = Callable[[str], Union[bytes, str]]  # URL -> the bytes, or why there are none (a phrase)


def is_signed_index(url: str) -> bool:
    return bool(DISTS.match(url or ""))


@lru_cache(maxsize=None)
def _anchors() -> tuple:
    keys = []
    for name, fingerprint in ANCHORS.items():
        key = openpgp.load_key((KEY_DIR / name).read_text(encoding="ascii"))
        if key.fingerprint != fingerprint:  # a swapped key file is caught before it is ever used
            raise LabkitError(f"labkit/bundle/keys/{name} is not the key with fingerprint {fingerprint}",
                              "restore labkit/bundle/keys/ from git")
        keys.append(key)
    return tuple(keys)


def trusted_keys(extra_dir: Optional[Path] = None) -> tuple:
    """Ubuntu's archive keys, plus the *.asc files in `extra_dir` (the lock's archive-keys/) if any."""
    extra = []
    for path in sorted(Path(extra_dir).glob("*.asc")) if extra_dir else ():
        try:
            extra.append(openpgp.load_key(path.read_text(encoding="ascii", errors="replace")))
        except OSError as exc:
            raise LabkitError(f"cannot read the archive key {path} ({exc.strerror})", "fix or remove it") from None
        except openpgp.SignatureError as exc:
            raise LabkitError(f"the archive key {path} {exc.message}", "give an armored OpenPGP RSA public key "
                              "(gpg --armor --export KEYID), or remove the file") from None
    return _anchors() + tuple(extra)


def fields(text: str) -> dict:
    """A deb822 paragraph: {field: value}, continuation lines joined with '\\n'."""
    out: dict = {}
    key = None
    for line in text.split("\n"):
        if line[:1] in (" ", "\t") and key:
            out[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            out[key] = value.strip()
    return out


def speaks_for(info: dict, suite: str) -> bool:
    """Whether a Release paragraph is the one for `dists/<suite>/`. Its `Suite` must be that name
    (Ubuntu: `xenial`, `xenial-updates`, each with `Codename: xenial`). `Codename` stands in only for a
    Debian-style directory named by codename whose `Suite` is an alias (`dists/bookworm`: `Suite: stable`),
    never for a pocket of that codename: a signed xenial-updates file is not xenial's."""
    named = info.get("Suite")
    if named == suite:
        return True
    return info.get("Codename") == suite and not (named or "").startswith(suite + "-")


def read_index(url: str, read: Reader, keys: tuple, now: float | None = None) -> bytes:
    """The index at `url`, checked against the signed InRelease of its suite. Raises LabkitError."""
    m = DISTS.match(url)
    if not m:
        raise LabkitError(f"{url} is not an index under dists/<suite>/", "write published: .../dists/<suite>/...")
    release_url = m["base"] + "/InRelease"
    suite, path = m["suite"], m["path"]
    data = read(release_url)
    if isinstance(data, str):
        raise LabkitError(f"the signed InRelease {release_url} {data}",
                          "check the network connection and run invoke bundle.lock again")
    text = data.decode("utf-8", errors="replace")
    try:
        body, _key = openpgp.verify_cleartext(text, keys, now)
    except openpgp.SignatureError as exc:
        raise LabkitError(f"{release_url} {exc.message}; nothing was pinned from it",
                          "someone between this machine and the archive may be altering it: run invoke bundle.lock "
                          "from another network; if it persists, see 'Ubuntu's signed chain' in docs/bundle.md") from None
    info = fields(body)
    if not speaks_for(info, suite):
        raise LabkitError(f"{release_url} is signed but speaks for suite {info.get('Suite') or '(none)'}, not {suite}",
                          "a mirror is serving another suite there: use the archive itself in published:")
    until = info.get("Valid-Until")
    if until:
        try:
            expiry = email.utils.parsedate_to_datetime(until).timestamp()
        except (TypeError, ValueError):
            expiry = 0.0  # an unreadable date is treated as passed
        if expiry < (time.time() if now is None else now):
            raise LabkitError(f"{release_url} is stale (Valid-Until {until} has passed)",
                              "the mirror stopped updating: point published: at the archive itself")
    listed = {}
    for line in info.get("SHA256", "").split("\n"):
        parts = line.split()
        if len(parts) == 3 and re.fullmatch(r"[0-9a-f]{64}", parts[0]) and parts[1].isdigit():
            listed[parts[2]] = (parts[0], int(parts[1]))
    if path not in listed:
        raise LabkitError(f"{release_url} (signed) lists no SHA256 for {path}",
                          "check the component and architecture in published: (e.g. universe/binary-amd64)")
    index = read(url)
    if isinstance(index, str):
        raise LabkitError(f"the index {url} {index}", "check the network connection and run invoke bundle.lock again")
    want_hash, want_size = listed[path]
    if len(index) != want_size or hashlib.sha256(index).hexdigest() != want_hash:
        raise LabkitError(f"the index {url} does not match the SHA256 its signed InRelease gives "
                          f"({len(index)} bytes, InRelease says {want_size}); nothing was pinned from it",
                          "a mirror mid-update or someone altering it: run invoke bundle.lock again later, or from "
                          "another network")
    return index
