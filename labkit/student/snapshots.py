"""Section snapshots: "section-N" is the VM at the start of section N (sections 1..N-1 done).

Each snapshot's metadata (.labkit/sections/section-N.json) records what the VM was built from: the
bundle (its CHECKSUMS) and the settings. A snapshot from another bundle or other settings would
bring back a lab that no longer matches them, so start refuses it and says why.
"""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Optional


def name(section: int) -> str:
    return f"section-{section}"


def meta_file(settings, section: int) -> Path:
    return settings.state_dir / "sections" / f"{name(section)}.json"


def fingerprint(settings) -> dict:
    """What a section snapshot depends on: the bundle's CHECKSUMS and the settings (as loaded)."""
    sums = settings.bundle_dir / "CHECKSUMS"
    bundle = hashlib.sha256(sums.read_bytes()).hexdigest() if sums.is_file() else "no CHECKSUMS"
    data = json.dumps(settings.data, sort_keys=True, default=str).encode()
    return {"bundle": bundle, "settings": hashlib.sha256(data).hexdigest()}


def record(settings, section: int, now: Optional[datetime.datetime] = None, machine: Optional[str] = None) -> None:
    """machine: Vagrant's id of the VM the snapshot belongs to (a rebuilt VM has another id and not the snapshot)."""
    from labkit.fsutil import write_atomic

    meta = {**fingerprint(settings), "saved": (now or datetime.datetime.now(datetime.timezone.utc)).isoformat(
        timespec="seconds"), **({"machine": machine} if machine else {})}
    path = meta_file(settings, section)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(meta, indent=2) + "\n")


def machine(settings, section: int) -> Optional[str]:
    """The VM id recorded with snapshot section-N, if any."""
    try:
        return json.loads(meta_file(settings, section).read_text()).get("machine")
    except (OSError, ValueError, AttributeError):
        return None


def refusal(settings, section: int) -> Optional[str]:
    """Why snapshot section-N must not be restored, or None if it matches this bundle and settings."""
    path = meta_file(settings, section)
    if not path.is_file():
        return f"snapshot {name(section)} has no record of the bundle and settings it was made with"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"the record of snapshot {name(section)} ({path}) is unreadable"
    now = fingerprint(settings)
    saved = meta.get("saved", "an unknown date")
    if meta.get("bundle") != now["bundle"]:
        return f"snapshot {name(section)} was made on {saved} from another bundle (its CHECKSUMS changed since)"
    if meta.get("settings") != now["settings"]:
        return f"snapshot {name(section)} was made on {saved} with other settings"
    return None
