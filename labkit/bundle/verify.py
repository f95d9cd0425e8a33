"""bundle.verify: is every artifact present and intact? Hashes files in parallel (one thread per core)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from labkit.bundle import hashing


@dataclass(frozen=True)
class Finding:
    name: str
    path: str
    problem: Optional[str]  # None = intact
    pinned: bool = True

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def fix(self) -> str:
        if self.problem is None:
            return ""
        if self.problem == "unpinned" or not self.pinned:
            return f"on a connected machine: invoke bundle.lock --only {self.name}, then commit the lock"
        if self.problem.startswith("unreadable"):
            return f"make {self.path} readable (permissions, or the disk), or invoke bundle.fetch --only {self.name}"
        return f"invoke bundle.fetch --only {self.name}"


def workers() -> int:
    return max(2, os.cpu_count() or 2)


def verify(artifacts, bundle_dir: Path, allow_unpinned: bool = False,
           on_bytes: Optional[Callable[[int], None]] = None, threads: Optional[int] = None) -> list[Finding]:
    """One Finding per artifact, in the order given. Biggest files start first so the cores finish together."""
    def size(a) -> int:
        f = a.file(bundle_dir)
        return f.stat().st_size if f.is_file() else 0

    def check(a) -> Finding:
        return Finding(a.name, a.path, hashing.problem(a, bundle_dir, allow_unpinned, on_bytes), a.pinned)

    order = sorted(artifacts, key=size, reverse=True)
    with ThreadPoolExecutor(max_workers=threads or workers()) as pool:
        found = dict(zip((a.name for a in order), pool.map(check, order)))
    return [found[a.name] for a in artifacts]
