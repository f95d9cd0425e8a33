"""<bundle>/CHECKSUMS: the lock's pins, in a form the VM's bash can check without a YAML parser.

One line per pinned artifact:  <name> <algo> <hex> <path>
provision/ scripts check each artifact against it before use; unpinned artifacts have no line, so
the VM refuses them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.bundle.hashing import expected, file_digest
from labkit.fsutil import write_atomic

FILE_NAME = "CHECKSUMS"


def render(lock, bundle_dir: Path | None = None) -> str:
    """An image pinned by its digest or image ID alone gets the sha256 of its archive in `bundle_dir` (call this only
    after the archive passed its check against the digest: fetch and verify do)."""
    lines = []
    for a in lock.artifacts:
        pin = expected(a)
        if pin is None and a.kind == "image" and a.pinned and bundle_dir is not None and a.file(bundle_dir).is_file():
            pin = ("sha256", file_digest(a.file(bundle_dir), "sha256"))
        if pin is not None and a.pinned:  # an image needs its registry digest (or image ID) too
            lines.append(f"{a.name} {pin[0]} {pin[1]} {a.path}")
    return "".join(line + "\n" for line in lines)


def write(lock, bundle_dir: Path) -> Path:
    target = Path(bundle_dir) / FILE_NAME
    write_atomic(target, render(lock, bundle_dir))
    return target


def write_or_warn(lock, bundle_dir: Path) -> bool:
    """CHECKSUMS for the VM; a read-only bundle (a USB stick) keeps the one it has, with a warning."""
    from labkit import ui

    try:
        write(lock, bundle_dir)
        return True
    except OSError as exc:
        try:
            current = (bundle_dir / FILE_NAME).read_text() == render(lock, bundle_dir)
        except OSError:
            current = False
        ui.warn(f"CHECKSUMS not rewritten ({exc.strerror or exc}: {bundle_dir})" + (
            "; the one there matches the lock" if current else "; the one there is missing or does not match the "
            "lock, so the VM may refuse artifacts: copy the bundle somewhere writable and run bundle.verify there"))
        return False


@dataclass(frozen=True)
class Checksum:
    name: str
    algo: str
    hex: str
    path: str


def parse(text: str) -> list[Checksum]:
    """The lines render() writes (comments and malformed lines ignored); cluster.init reads the VM's copy."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and not parts[0].startswith("#"):
            out.append(Checksum(*parts))
    return out
