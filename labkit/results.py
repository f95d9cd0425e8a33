"""What a task did, written as data for whoever ran it (the acceptance run), not read back from its screen.

When the environment names a file in `INVOKE_LABKIT_RESULTS` (Invoke's own prefix: `LABKIT_*` names are
settings), each finished status line (`ui.step`), each provision step's end, the task's one-line error
and any report a task makes (doctor's checks) are appended to it as one JSON object per line:

    {"kind": "step", "title": "Creating VM ubuntu ...", "outcome": "ok|skipped|failed|interrupted", "note": "...", "seconds": 52.1}
    {"kind": "provision", "step": "base", "seconds": 41}
    {"kind": "error", "message": "...", "fix": "..."}
    {"kind": "report", "report": {...labkit-checks/1...}}

Without the variable nothing is written. A line is written whole or not at all for the reader (`read`
drops a last line cut short by a killed task).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

ENV = "INVOKE_LABKIT_RESULTS"
_lock = threading.Lock()


def record(kind: str, **fields) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, **fields}, ensure_ascii=False) + "\n"
    try:
        with _lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError:  # the reader's file went away: the task itself goes on
        pass


def read(path: Path) -> list[dict]:
    """Every whole record of the file (none if it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "kind" in item:
            out.append(item)
    return out
