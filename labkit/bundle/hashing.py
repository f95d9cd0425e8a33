"""Hashing artifacts against the lock: the check every artifact passes before it is used."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

CHUNK = 1024 * 1024


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def expected(artifact) -> tuple[str, str] | None:
    """(algorithm, hex) the lock pins for this artifact's file, strongest first."""
    for algo in ("sha512", "sha256"):
        value = getattr(artifact, algo)
        if value:
            return algo, value
    return None


def problem(artifact, bundle_dir: Path, allow_unpinned: bool = False) -> Optional[str]:
    """None if the artifact's file is present and matches the lock, else what is wrong (one phrase)."""
    f = artifact.file(bundle_dir)
    if not f.is_file():
        return "missing"
    if artifact.size is not None and f.stat().st_size != artifact.size:
        return f"corrupt (size {f.stat().st_size}, expected {artifact.size})"
    pin = expected(artifact)
    if pin is None:
        return None if allow_unpinned else "unpinned"
    algo, want = pin
    return None if file_digest(f, algo) == want else f"corrupt ({algo} mismatch)"
