"""bundle.status: size, completeness and age of a bundle, without hashing (bundle.verify does that)."""
from __future__ import annotations

import time
from pathlib import Path

from labkit.bundle.download import PART
from labkit.bundle.lock import CHECKSUMS_FILE
from labkit.bundle.progress import mb


def age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def report(lock, dest: Path, now: float | None = None, provider: str | None = None,
           arch: str | None = None) -> list[list[str]]:
    """Rows of (what, value) for ui.table. With a provider (an arch), other providers' boxes (other guest
    architectures' artifacts) do not count."""
    now = time.time() if now is None else now
    dest = Path(dest)
    needed = lock.needed(provider, arch)
    present = [a for a in needed if a.present(dest)]
    missing = [a for a in needed if a not in present]
    unpinned = [a for a in lock.artifacts if not a.pinned]
    on_disk = sum(a.file(dest).stat().st_size for a in present)
    sizes = [a.size for a in needed]  # the same artifacts as "complete" counts
    expected = sum(s for s in sizes if s is not None)
    # a file's <path>.part, or an image's <path>.blobs.part/ (the blobs inside it are one download)
    parts = [p for p in dest.rglob(f"*{PART}") if not p.parent.name.endswith(PART)] if dest.is_dir() else []
    part_bytes = sum(q.stat().st_size for p in parts for q in ([p] if p.is_file() else p.rglob("*")) if q.is_file())
    rows = [
        ["bundle", str(dest)],
        ["complete", f"{len(present)} of {len(needed)} artifacts present"
                     + ("" if missing else " (run invoke bundle.verify to check their hashes)")],
        ["size", f"{mb(on_disk)} on disk"
                 + (f" of {mb(expected)} known" + (" (some sizes unknown)" if None in sizes else "")
                    if expected else "")],
    ]
    if missing:
        names = ", ".join(a.name for a in missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        rows.append(["missing", f"{names} (invoke bundle.fetch)"])
    sources = {a.source for a in lock.artifacts if a.source}
    others = [a.name for a in lock.artifacts if a not in needed and a.name not in sources]
    if others:
        shown = ", ".join(others[:8]) + (f" and {len(others) - 8} more" if len(others) > 8 else "")
        rows.append(["not needed", f"{shown} (for other providers than {provider}"
                     + (f" or other guest architectures than {arch})" if arch else ")")])
    for name in sources:
        source = lock.get(name)
        rows.append(["source", f"{name}: " + ("present" if source.present(dest) else "not here")
                     + " (only bundle.fetch on a connected machine needs it, to take images from; laptops do not)"])
    rows.append(["provenance", provenance_summary(lock)])
    if unpinned:
        rows.append(["unpinned", f"{len(unpinned)}: " + ", ".join(a.name for a in unpinned[:8])
                     + (" …" if len(unpinned) > 8 else "") + " (invoke bundle.lock on a connected machine)"])
    if parts:
        rows.append(["partial", f"{len(parts)} interrupted download(s), {mb(part_bytes)} (bundle.fetch resumes them)"])
    checks = dest / CHECKSUMS_FILE
    rows.append(["last fetch/verify", age(now - checks.stat().st_mtime) if checks.is_file() else "never"])
    if present:
        oldest = min(a.file(dest).stat().st_mtime for a in present)
        rows.append(["oldest artifact", age(now - oldest)])
    return rows


def provenance_summary(lock, artifacts=None) -> str:
    """"14 recorded-digest, 2 changelog; 11 unpinned, bundle.lock pins them from: 6 signed-index, 4 changelog,
    1 first-use (weave-manifest)": how many pins came (or will come) from each kind of source, and which
    are trusted on first use: nobody but the first download vouches for those."""
    from labkit.bundle.lock import PROVENANCE
    from labkit.bundle.resolve import provenance_of

    artifacts = lock.artifacts if artifacts is None else artifacts
    pinned = {kind: [] for kind in PROVENANCE}
    todo = {kind: [] for kind in PROVENANCE}
    unstated = 0
    for a in artifacts:
        if a.pinned and not a.provenance:
            unstated += 1
        else:
            (pinned if a.pinned else todo)[provenance_of(lock, a)].append(a.name)

    def counted(groups: dict) -> str:
        return ", ".join(f"{len(names)} {kind}" + (f" ({', '.join(names)})" if kind == "first-use" else "")
                         for kind, names in groups.items() if names)

    parts = [counted(pinned)] if counted(pinned) else []
    parts += [f"{unstated} without provenance"] if unstated else []
    text = ", ".join(parts)
    unpinned = sum(len(v) for v in todo.values())
    if unpinned:
        text += ("; " if text else "") + f"{unpinned} unpinned, bundle.lock pins them from: {counted(todo)}"
    return text or "no artifacts"
