"""Reading the two outputs a plan gives: the numbered step titles of --dry-run, the status lines of a run."""
from __future__ import annotations

import re

PLANNED = re.compile(r"^\d+\. (.+)$")
STARTED = re.compile(r"^(?:•|\*) (.+)$")  # ui.step's start line, UTF-8 or plain


def planned(text: str) -> list[str]:
    return [m.group(1) for m in map(PLANNED.match, text.splitlines()) if m]


def ran(text: str) -> list[str]:
    return [m.group(1) for m in map(STARTED.match, text.splitlines()) if m]


def described(text: str, title: str) -> str:
    """The lines a dry-run printed under step `title`, unindented."""
    lines, inside = [], False
    for line in text.splitlines():
        m = PLANNED.match(line)
        if m:
            inside = m.group(1) == title
        elif inside:
            lines.append(line[5:])
    return "\n".join(lines)
