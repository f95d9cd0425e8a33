"""Hashing artifacts against the lock: the check every artifact passes before it is used."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional

CHUNK = 1024 * 1024


def file_digest(path: Path, algo: str, on_bytes: Optional[Callable[[int], None]] = None) -> str:
    """Hex digest of a file. One reused buffer: hashlib releases the GIL on big updates, so
    several files hash in parallel threads at full speed (bundle.verify uses every core)."""
    h = hashlib.new(algo)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            if on_bytes:
                on_bytes(n)
    return h.hexdigest()


def expected(artifact) -> tuple[str, str] | None:
    """(algorithm, hex) the lock pins for this artifact's file, strongest first."""
    for algo in ("sha512", "sha256"):
        value = getattr(artifact, algo)
        if value:
            return algo, value
    return None


def problem(artifact, bundle_dir: Path, allow_unpinned: bool = False,
            on_bytes: Optional[Callable[[int], None]] = None) -> Optional[str]:
    """None if the artifact's file is present and matches the lock, else what is wrong (one phrase)."""
    f = artifact.file(bundle_dir)
    if not f.is_file():
        return "missing"
    if artifact.size is not None and f.stat().st_size != artifact.size:
        return f"corrupt (size {f.stat().st_size}, expected {artifact.size})"
    if artifact.kind == "image" and not artifact.pinned and not allow_unpinned:
        return "unpinned"
    pin = expected(artifact)
    if pin is None and artifact.kind == "image" and artifact.pinned:
        from labkit.bundle import archive  # no archive hash in the lock: check it against the digest or ID itself

        wrong = archive.check_image(f, artifact)
        if on_bytes:
            on_bytes(f.stat().st_size)
        return None if wrong is None else f"corrupt (the archive {wrong})"
    if pin is None:
        return None if allow_unpinned else "unpinned"
    algo, want = pin
    try:
        return None if file_digest(f, algo, on_bytes) == want else f"corrupt ({algo} mismatch)"
    except OSError as exc:  # permissions, a failing USB stick: a row in the table, not a traceback
        return f"unreadable ({exc.strerror or exc})"
