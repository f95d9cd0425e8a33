"""Write pins into the lock file without disturbing its comments and layout (they document the pins).

Only the shape labkit's lock uses is supported: a top-level `artifacts:` list of block mappings,
each starting with `- name: <name>`. Values are replaced in place or added at the end of the entry.
The result is parsed again and checked before it replaces the file.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from labkit.bundle.lock import LockError, load
from labkit.fsutil import write_atomic

ENTRY = re.compile(r"^(?P<indent>\s*)- name:\s*['\"]?(?P<name>[a-z0-9][a-z0-9._-]*)['\"]?\s*(#.*)?$")


def record(path: Path, updates: dict, note: str = "") -> None:
    """updates: {artifact name: {key: value}}; note: a trailing comment on each line written."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [(i, m) for i, line in enumerate(lines) if (m := ENTRY.match(line))]
    for name, values in updates.items():
        found = [(i, m) for i, m in starts if m.group("name") == name]
        if len(found) != 1:
            raise LockError(f"{path.name}: cannot find the entry '- name: {name}' to record its pin",
                            "keep each artifact as a block starting with '- name: <name>'")
        lines = _set(lines, found[0][0], len(found[0][1].group("indent")), values, note)
        starts = [(i, m) for i, line in enumerate(lines) if (m := ENTRY.match(line))]
    text = "\n".join(lines) + "\n"
    tmp = path.with_name(path.name + ".check.part")
    tmp.write_text(text, encoding="utf-8")
    try:
        lock = load(tmp)
        for name, values in updates.items():
            a = lock.get(name)
            for key, value in values.items():
                if getattr(a, key) != value:
                    raise LockError(f"{path.name}: writing {key} of {name} did not round-trip",
                                    "record the pin by hand (see docs/bundle.md)")
    finally:
        tmp.unlink(missing_ok=True)
    write_atomic(path, text)


def _set(lines: list, start: int, indent: int, values: dict, note: str) -> list:
    key_indent = " " * (indent + 2)
    end = start + 1
    while end < len(lines):
        line = lines[end]
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    last = start  # the last line holding content of this entry (comments after it belong to the next)
    for i in range(start + 1, end):
        if lines[i].strip() and not lines[i].strip().startswith("#"):
            last = i
    out = list(lines)
    comment = f"  # {note}" if note else ""
    for key, value in values.items():
        if isinstance(value, str) and yaml.safe_load(f"v: {value}")["v"] != value:
            value = f'"{value}"'  # a hex pin of digits only would read back as a number
        text = f"{key_indent}{key}: {value}{comment}"
        pattern = re.compile(rf"^{key_indent}{re.escape(key)}:")
        hit = next((i for i in range(start + 1, last + 1) if pattern.match(out[i])), None)
        if hit is not None:
            out[hit] = text
        else:
            last += 1
            out.insert(last, text)
    return out
