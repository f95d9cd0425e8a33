"""<bundle>/CHECKSUMS: the lock's pins, in a form the VM's bash can check without a YAML parser.

One line per pinned artifact:  <name> <algo> <hex> <path>
provision/ scripts check each artifact against it before use; unpinned artifacts have no line, so
the VM refuses them.
"""
from __future__ import annotations

from pathlib import Path

from labkit.bundle.hashing import expected
from labkit.fsutil import write_atomic

FILE_NAME = "CHECKSUMS"


def render(lock) -> str:
    lines = []
    for a in lock.artifacts:
        pin = expected(a)
        if pin is not None and a.pinned:  # an image needs its registry digest too
            lines.append(f"{a.name} {pin[0]} {pin[1]} {a.path}")
    return "".join(line + "\n" for line in lines)


def write(lock, bundle_dir: Path) -> Path:
    target = Path(bundle_dir) / FILE_NAME
    write_atomic(target, render(lock))
    return target
