"""The student's side: `class.join` records the class; doctor and verify then send their reports.

The record (.labkit/class.json: URL, code, name, seat id) and the queue (.labkit/class-queue/) live in
the project's git-ignored state directory. `send` never raises and never holds the student up for
long: the report is first written to the queue, then the queue is posted oldest first with short
timeouts; whatever is not accepted stays queued for the next report (or `invoke class.send`).
"""
from __future__ import annotations

import json
import platform
import secrets
import sys
import time
from pathlib import Path

RECORD = "class.json"
QUEUE = "class-queue"
QUEUE_MAX = 200                 # oldest dropped beyond this: a student offline all term never fills a disk
TIMEOUT = (1.0, 2.0)            # connect, read (seconds): the most a report can hold a command up per attempt


def state_dir(root: Path) -> Path:
    return Path(root) / ".labkit"


def record(root: Path):
    """The joined class ({url, code, name, seat}) or None."""
    try:
        data = json.loads((state_dir(root) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and {"url", "code", "name", "seat"} <= data.keys() else None


def join(root: Path, url: str, code: str, name: str) -> dict:
    """Check URL and code with the room, then record them (the seat id stays the same on a re-join)."""
    import re

    import requests

    from labkit.errors import LabkitError
    from labkit.fsutil import write_atomic

    url = url.rstrip("/")
    if not re.match(r"^https?://[^/\s]+$", url):
        raise LabkitError(f"{url} is not the room's URL", "copy it from the projector, like http://192.168.1.20:8788")
    name = " ".join(name.split())
    if not 1 <= len(name) <= 60:
        raise LabkitError("--name must be 1 to 60 characters", 'give your name as the instructor should see it, '
                          'like --name "Ana"')
    code = code.strip().upper()
    try:
        answer = requests.get(f"{url}/api/hello", headers={"X-Class-Code": code}, timeout=(3, 5))
    except requests.RequestException:
        raise LabkitError(f"the room at {url} does not answer", "check the URL on the projector and that this "
                          "laptop is on the classroom network") from None
    if answer.status_code == 403:
        raise LabkitError(f"the room at {url} refuses the code {code}", "copy the class code from the projector")
    if answer.status_code != 200:
        raise LabkitError(f"{url} answered {answer.status_code}: it is not a labkit room",
                          "copy the URL that class.serve printed")
    old = record(root) or {}
    data = {"url": url, "code": code, "name": name, "seat": old.get("seat") or secrets.token_hex(8),
            "bundle": str(answer.json().get("bundle") or "")}
    write_atomic(state_dir(root) / RECORD, json.dumps(data, indent=2) + "\n", mode=0o600)
    return data


def send(root: Path, kind: str, report) -> None:
    """Queue the report for the joined class and post the queue; one quiet line on stderr. Never raises."""
    try:
        joined = record(root)
        if joined is None:
            return
        enqueue(root, joined, kind, report)
        sent, left, refused = flush(root, joined)
        print(line(joined, sent, left, refused), file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 (sending a report must never fail the student's command)
        print(f"class: report not sent ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)


def line(joined: dict, sent: int, left: int, refused: list) -> str:
    if refused:
        return f"class: the room refused {len(refused)} report(s): {refused[0]}"
    if left:
        return (f"class: room not reachable at {joined['url']}; {left} report(s) queued, "
                "sent with the next one (or invoke class.send)")
    return f"class: report sent to the room as {joined['name']}"


def enqueue(root: Path, joined: dict, kind: str, report) -> Path:
    from labkit.fsutil import write_atomic

    queue = state_dir(root) / QUEUE
    envelope = {"seat": joined["seat"], "name": joined["name"], "host": platform.node()[:100], "kind": kind,
                "taken": time.time(), "sent": 0, "report": report}
    path = queue / f"{time.time_ns()}-{kind}.json"
    write_atomic(path, json.dumps(envelope, ensure_ascii=False), mode=0o600)
    for old in sorted(queue.glob("*.json"))[:-QUEUE_MAX]:
        old.unlink(missing_ok=True)
    return path


def flush(root: Path, joined: dict) -> tuple:
    """Post queued reports oldest first: (sent, left in queue, reasons of refused ones).

    Stops at the first that cannot be delivered now (unreachable, 429, 5xx); a report the room refuses
    for good (4xx: wrong code, invalid) is dropped with its reason, since sending it again cannot help.
    """
    import requests

    sent, refused = 0, []
    pending = sorted((state_dir(root) / QUEUE).glob("*.json"))
    with requests.Session() as session:
        for i, path in enumerate(pending):
            try:
                envelope = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            envelope["sent"] = time.time()
            try:
                answer = session.post(f"{joined['url']}/api/reports", json=envelope, timeout=TIMEOUT,
                                      headers={"X-Class-Code": joined["code"]})
            except requests.RequestException:
                return sent, len(pending) - i, refused
            if answer.status_code == 201:
                sent += 1
            elif answer.status_code == 429 or answer.status_code >= 500:
                return sent, len(pending) - i, refused
            else:
                try:
                    reason = answer.json().get("error", "")
                except ValueError:
                    reason = ""
                refused.append(f"{answer.status_code} {reason}".strip())
            path.unlink(missing_ok=True)
    return sent, 0, refused
