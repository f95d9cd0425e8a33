"""bundle.lock --audit (online): re-derive every pin of the committed lock that can be re-derived from its
source, and report any difference. Reads only checksum lists, signed indexes and registry manifests:
no artifact is downloaded.

What can be re-derived: a file with `published:` (its checksum list, or its Ubuntu index through the
signed InRelease, read again), an image whose `ref` names a tag (the digest the tag points to now), an
image taken from a release tarball (its image ID read again from the tarball, if the bundle holds it intact).
A pin copied from a changelog or another recorded source, or taken on first use, has no online
source to ask: its row says so and names where to look (the comment above it in the lock).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from labkit.errors import LabkitError

SAME, DIFFERENT, UNCHECKED, BY_HAND = "same", "DIFFERENT", "could not check", "by hand"


@dataclass(frozen=True)
class Row:
    name: str
    provenance: str
    pin: str        # short form of the lock's pin
    found: str      # short form of what the source says now ("" if nothing was found)
    verdict: str    # SAME | DIFFERENT | UNCHECKED | BY_HAND
    note: str = ""

    def cells(self) -> list:
        return [self.name, self.provenance, self.pin, self.found or "-", self.verdict + (f": {self.note}" if self.note
                                                                                          else "")]


def short(value: Optional[str]) -> str:
    if not value:
        return ""
    algo, _, hexdigest = value.rpartition(":")
    return (f"{algo}:" if algo else "") + hexdigest[:12] + "…"


def rows(lock, published: Callable[[object], Union[tuple, LabkitError, str]],
         tag_digest: Callable[[object], Union[str, LabkitError]],
         taken_id: Callable[[object], Union[str, LabkitError]] = lambda a: LabkitError("not asked", "")) -> list[Row]:
    """One Row per artifact. published(a) -> (algo, hex) from a's checksum list now, or why not;
    tag_digest(a) -> the digest a's tag points to now, or a LabkitError; taken_id(a) -> the image ID of a's
    member in its source, or a LabkitError."""
    out = []
    for a in lock.artifacts:
        kind = a.provenance or ("first-use" if (a.sha256 or a.sha512 or a.digest or a.id) else "unpinned")
        if a.source and a.id:
            found = taken_id(a)
            if isinstance(found, LabkitError):
                out.append(Row(a.name, kind, short(a.id), "", UNCHECKED, found.message))
            else:
                out.append(Row(a.name, kind, short(a.id), short(found), SAME if found == a.id else DIFFERENT,
                               "" if found == a.id else f"{a.member} in {a.source} is another image"))
            continue
        if a.kind == "file" and a.published and (a.sha256 or a.sha512):
            found = published(a)
            if not isinstance(found, tuple):
                why = found.message if isinstance(found, LabkitError) else str(found)
                out.append(Row(a.name, kind, short(a.sha512 or a.sha256), "", UNCHECKED, why))
                continue
            algo, hexdigest = found
            mine = getattr(a, algo)
            if mine is None:
                out.append(Row(a.name, kind, short(a.sha512 or a.sha256), short(f"{algo}:{hexdigest}"), UNCHECKED,
                               f"the list gives {algo}, the lock pins another algorithm"))
            else:
                out.append(Row(a.name, kind, short(f"{algo}:{mine}"), short(f"{algo}:{hexdigest}"),
                               SAME if mine == hexdigest else DIFFERENT))
        elif a.kind == "image" and a.digest and a.ref and "@" not in a.ref:
            found = tag_digest(a)
            if isinstance(found, LabkitError):
                out.append(Row(a.name, kind, short(a.digest), "", UNCHECKED, found.message))
            else:
                out.append(Row(a.name, kind, short(a.digest), short(found), SAME if found == a.digest else DIFFERENT,
                               "" if found == a.digest else f"{a.ref} now points elsewhere; the pinned digest is "
                               "still what bundle.fetch takes"))
        elif kind == "unpinned":
            out.append(Row(a.name, kind, "", "", UNCHECKED, "unpinned (invoke bundle.lock pins it)"))
        else:
            pin = a.sha512 and f"sha512:{a.sha512}" or a.sha256 and f"sha256:{a.sha256}" or a.digest
            out.append(Row(a.name, kind, short(pin), "", BY_HAND, "no online source: see its comment in the lock"))
    return out


def run(lock, bundle_dir: Optional[Path] = None, timeout=(10, 60)) -> list[Row]:
    """The audit against the real sources (online; images taken from a release tarball: the bundle's copy)."""
    import requests

    from labkit.bundle import aptchain, fetch, registry, resolve
    from labkit.bundle.download import _reason

    sessions = fetch.Sessions()
    keys_dir = Path(lock.path).parent / aptchain.EXTRA_KEYS_DIR
    lists: dict = {}
    keys: list = []

    def published(a):
        if a.published not in lists:
            lists[a.published] = resolve._read_published(a.published, sessions, timeout, keys, keys_dir)
        pin, why = resolve._pin_in(lists[a.published], a)
        return pin if pin is not None else why

    client = registry.Client(sessions, timeout)

    def tag_digest(a):
        ref = registry.parse_ref(a.ref)
        try:
            return client.manifest(ref, ref.tag or "latest")[2]
        except LabkitError as exc:
            return exc
        except requests.RequestException as exc:  # one row, not a traceback
            return LabkitError(f"cannot reach {ref.registry} ({_reason(exc)})", "")

    taken: dict = {}

    def taken_id(a):
        from labkit.bundle import derive, hashing

        source = lock.get(a.source)
        if bundle_dir is None or hashing.problem(source, bundle_dir) is not None:
            return LabkitError(f"needs {source.name} intact in the bundle (invoke bundle.fetch --only {a.name})", "")
        if a.name not in taken:  # one pass over the source for all its images
            images = [b for b in lock.artifacts if b.source == a.source and b.id]
            taken.update(derive.image_ids(source.file(bundle_dir), images, Path(bundle_dir)))
        return taken[a.name]

    return rows(lock, published, tag_digest, taken_id)
