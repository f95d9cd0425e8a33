"""bundle.lock: pin what the lock leaves unpinned, on a connected machine, and write the pins back.

A file with `published:` gets its pin from that checksum list (the publisher's word; an apt index under
dists/<suite>/ only through the suite's signed InRelease, see aptchain.py); anything else
is pinned by trust on first use: downloaded once, hashed, recorded, and reported loudly so that a
person reviews the diff before committing it. Images get the digest their tag points to (if the
lock has none) and the sha256 of the archive labkit writes from it; an image taken from a release tarball
(derive.py) gets its image ID, as trusted as the tarball's own pin.
"""
from __future__ import annotations

import dataclasses
import gzip
import lzma
import re
import zlib
from pathlib import Path, PurePosixPath
from typing import Optional

from labkit.errors import LabkitError

HEXLEN = {64: "sha256", 128: "sha512"}


def published_pin(data: bytes, filename: str) -> Optional[tuple[str, str]]:
    """(algo, hex) for `filename` in a checksum list: sha256sum/sha512sum output, BSD `SHA256 (f) = x`,
    a bare `.sha256` file, or a Debian/Ubuntu Packages index (plain, .gz or .xz)."""
    text = _text(data)
    if is_packages(text):
        return _from_packages(text, filename)
    tokens = text.split()
    if len(tokens) == 1 and len(tokens[0]) in HEXLEN and re.fullmatch(r"[0-9a-fA-F]+", tokens[0]):
        return HEXLEN[len(tokens[0])], tokens[0].lower()
    for line in text.splitlines():
        m = re.match(r"^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})\s+[ *]?(\S+)\s*$", line)
        if m and PurePosixPath(m.group(2)).name == filename:
            return HEXLEN[len(m.group(1))], m.group(1).lower()
        m = re.match(r"^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)\s*$", line)
        if m and PurePosixPath(m.group(2)).name == filename:
            return m.group(1).lower(), m.group(3).lower()
    return None


def _text(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:6] == b"\xfd7zXZ\x00":
        data = lzma.decompress(data)
    return data.decode("utf-8", errors="replace")


def is_packages(text: str) -> bool:
    return bool(re.search(r"^Package: ", text, re.M))


def _from_packages(text: str, filename: str) -> Optional[tuple[str, str]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+): *(.*)$", stanza, re.M))
        if PurePosixPath(fields.get("Filename", "")).name == filename:
            for key, algo in (("SHA512", "sha512"), ("SHA256", "sha256")):
                if re.fullmatch(r"[0-9a-f]{%d}" % (128 if algo == "sha512" else 64), fields.get(key, "")):
                    return algo, fields[key]
    return None


def pins_from_publishers(artifacts, sessions, timeout, keys_dir: Optional[Path] = None) -> tuple[list, dict, list]:
    """Artifacts with `published:` get their pin from it. Returns (artifacts that can go on,
    {name: (algo, hex)}, [LabkitError]): a list that fails costs only the artifacts that need it."""
    found, out, errors = {}, [], []
    lists: dict = {}  # URL -> bytes, or the reason it could not be read (asked once per run)
    keys: list = []   # the trusted archive keys, read when a signed index first needs them
    for a in artifacts:
        if a.kind == "file" and a.published and not a.pinned:
            if a.published not in lists:
                lists[a.published] = _read_published(a.published, sessions, timeout, keys, keys_dir)
            pin, why = _pin_in(lists[a.published], a)
            if isinstance(why, LabkitError):  # the signed chain did not hold: nothing is pinned from it
                errors.append(LabkitError(f"{a.name}: {why.message}", why.fix))
                continue
            if pin is None:
                fix = "fix published: in the lock, or remove it to pin by first download"
                if why.startswith("is an apt Packages index"):
                    fix = "point published: at the index under dists/<suite>/ (e.g. .../dists/xenial/universe/" \
                          "binary-amd64/Packages.xz) so its signed InRelease vouches for it"
                elif not why.startswith("lists no checksum"):  # the list itself could not be had
                    fix = "check the network connection and run invoke bundle.lock again, or " + fix
                errors.append(LabkitError(f"{a.name}: its checksum list {a.published} {why}", fix))
                continue
            found[a.name] = pin
            a = dataclasses.replace(a, **{pin[0]: pin[1]})
        out.append(a)
    return out, found, errors


def _pin_in(data, a) -> tuple[Optional[tuple[str, str]], Optional[str]]:
    """(pin, None) from a checksum list's bytes, else (None, why) as a phrase for the error line.
    `data` is what _read_list returned: the bytes, or already the reason there are none."""
    if not isinstance(data, bytes):
        return None, data  # why there is no list: a phrase, or the LabkitError of a broken signed chain
    name = PurePosixPath(a.path).name
    try:
        pin = published_pin(data, name) or published_pin(data, PurePosixPath(a.urls[0].split("?")[0]).name)
    except (OSError, EOFError, lzma.LZMAError, zlib.error):  # a truncated or damaged .gz/.xz
        return None, "is damaged (not a readable .gz or .xz file)"
    from labkit.bundle import aptchain

    if pin and not aptchain.is_signed_index(a.published or "") and is_packages(_text(data)):
        return None, "is an apt Packages index outside dists/<suite>/, so no signed InRelease vouches for it"
    return (pin, None) if pin else (None, f"lists no checksum for {name}")


def _read_published(url: str, sessions, timeout, keys: list, keys_dir):
    """An index under dists/<suite>/ only through its suite's signed InRelease (labkit/bundle/aptchain.py);
    any other checksum list as it is (the publisher's HTTPS site vouches for it)."""
    from labkit.bundle import aptchain

    if not aptchain.is_signed_index(url):
        return _read_list(url, sessions, timeout)
    try:
        keys[:] = keys or aptchain.trusted_keys(keys_dir)
        return aptchain.read_index(url, lambda u: _read_list(u, sessions, timeout), tuple(keys))
    except LabkitError as exc:
        return exc


def _read_list(url: str, sessions, timeout):
    """The list's bytes, or why there are none (a phrase for the error line)."""
    import requests

    from labkit.bundle.download import _reason

    try:
        with sessions().get(url, timeout=timeout) as resp:
            return resp.content if resp.status_code == 200 else f"answered HTTP {resp.status_code}"
    except requests.RequestException as exc:
        return f"could not be reached ({_reason(exc)})"


def resolve(lock, artifacts, dest: Path, opts, step=None) -> tuple[dict, list]:
    """Pin the unpinned among `artifacts`; fetches them into `dest`. Returns ({name: {key: value}} to
    write into the lock for those that worked, [LabkitError] for those that did not)."""
    from labkit.bundle import aptchain, fetch

    todo = [a for a in artifacts if not a.pinned]
    if not todo:
        return {}, []
    sessions = fetch.Sessions()
    keys_dir = Path(lock.path).parent / aptchain.EXTRA_KEYS_DIR
    todo, published, errors = pins_from_publishers(todo, sessions, opts.timeout, keys_dir)
    outcomes = fetch.fetch(lock, todo, dest, dataclasses.replace(opts, record=True), step)
    updates = {}
    for a, o in zip(todo, outcomes):
        if o.error:
            continue
        values: dict = {}
        if a.source:  # the image ID is the pin; the archive's bytes depend on the local zlib, so no hash or size
            updates[a.name] = {"id": o.image_id}
            continue
        if a.kind == "image" and not a.digest:
            values["digest"] = o.digest
        if a.name in published:
            algo, hexdigest = published[a.name]
            values[algo] = hexdigest
        elif not (a.sha256 or a.sha512):
            values["sha256"] = o.sha256
        if a.size is None:
            values["size"] = o.size if o.size is not None else a.file(dest).stat().st_size
        updates[a.name] = values
    return updates, errors + [o.error for o in outcomes if o.error]


def provenance_of(lock, a) -> str:
    """Where a's pin came from (the lock's provenance: field) or, for an unpinned artifact, where
    bundle.lock will take it from: one of lock.PROVENANCE."""
    from labkit.bundle import aptchain

    if a.provenance:
        return a.provenance
    if a.source:  # taken from a pinned release tarball: as strong as that tarball's pin
        return lock.get(a.source).provenance or "first-use"
    if a.published:
        return "signed-index" if aptchain.is_signed_index(a.published) else "publisher-checksum"
    if a.kind == "image" and a.digest:
        return "recorded-digest"
    return "first-use"


def by_provenance(lock, updates: dict) -> dict:
    """{provenance: {name: values}} for the updates bundle.lock writes, each with its provenance: field.
    An image whose digest the lock already had keeps the provenance it has (only the archive is new)."""
    groups: dict = {}
    for name, values in updates.items():
        kind = provenance_of(lock, lock.get(name))
        groups.setdefault(kind, {})[name] = {**values, "provenance": kind}
    return groups
