"""The student's side: `class.join` records the class; doctor and verify then send their reports.

The record (.labkit/class.json, 0600: URL, code, name, and the seat id and key the room gave) and the
queue (.labkit/class-queue/) live in the project's git-ignored state directory. `send` never raises
and never holds the student up for long: the report is first written to the queue, then the queue is
posted oldest first with short timeouts; whatever is not accepted stays queued for the next report
(or `invoke class.send`). A report is dropped only when the room refuses it for good (invalid, too
large); a 403 (the class code changed, the seat is unknown) or 404 keeps the queue and asks for a join.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import NamedTuple

RECORD = "class.json"
QUEUE = "class-queue"
QUEUE_MAX = 200                 # oldest dropped beyond this: a student offline all term never fills a disk
TIMEOUT = (1.0, 2.0)            # connect, read (seconds): the most a report can hold a command up per attempt


def state_dir(root: Path) -> Path:
    return Path(root) / ".labkit"


def record(root: Path):
    """The joined class ({url, code, name, seat, key}) or None."""
    try:
        data = json.loads((state_dir(root) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and {"url", "code", "name", "seat"} <= data.keys()):
        return None
    return dict(data, key=str(data.get("key", "")))  # joined before seats had keys: the room answers 403


def join(root: Path, url: str, code: str, name: str) -> dict:
    """Join the room (it checks the code and gives this laptop a seat and its key), then record them.

    A re-join sends the seat and key it had: the room keeps the seat (and its history) if the key is
    still valid."""
    import re

    import requests

    from labkit.errors import LabkitError
    from labkit.fsutil import write_atomic

    url = url.rstrip("/")
    if not re.match(r"^https?://[^/\s]+$", url):
        raise LabkitError(f"{url} is not the room's URL", "copy it from the projector, like http://192.168.1.20:8788")
    from labkit.room.schema import clean_text, problem_of_name

    name = clean_text(name)
    if problem_of_name(name):
        raise LabkitError(f"--name {problem_of_name(name)}", 'give your name as the instructor should see it, '
                          'like --name "Ana"')
    code = code.strip().upper()
    old = record(root) or {}
    try:
        answer = requests.post(f"{url}/api/join", headers={"X-Class-Code": code}, timeout=(3, 5),
                               json={"name": name, "seat": old.get("seat", ""), "key": old.get("key", "")})
    except requests.RequestException:
        raise LabkitError(f"the room at {url} does not answer", "check the URL on the projector and that this "
                          "laptop is on the classroom network") from None
    if answer.status_code == 403:
        raise LabkitError(f"the room at {url} refuses the code {code}", "copy the class code from the projector")
    if answer.status_code in (409, 429):
        raise LabkitError(f"the room at {url} answered {answer.status_code}: {_reason(answer)}",
                          "ask the instructor" if answer.status_code == 409 else "wait a minute, then join again")
    try:
        given = answer.json() if answer.status_code == 200 else None
        seat, key = str(given["seat"]), str(given["key"])
    except (ValueError, TypeError, KeyError):
        raise LabkitError(f"{url} answered {answer.status_code}: it is not a labkit room",
                          "copy the URL that class.serve printed") from None
    data = {"url": url, "code": code, "name": str(given.get("name") or name), "seat": seat, "key": key,
            "bundle": str(given.get("bundle") or "")}
    write_atomic(state_dir(root) / RECORD, json.dumps(data, indent=2) + "\n", mode=0o600)
    return data


def _reason(answer) -> str:
    try:
        return str(answer.json().get("error", ""))[:200]
    except (ValueError, AttributeError):
        return ""


class Flushed(NamedTuple):
    """What one flush of the queue did: sent, left queued, refusals for good, why it stopped ("" if not)."""
    sent: int
    left: int
    refused: list
    stopped: str = ""


def send(root: Path, kind: str, report) -> None:
    """Queue the report for the joined class and post the queue; one quiet line on stderr. Never raises."""
    try:
        joined = record(root)
        if joined is None:
            return
        enqueue(root, joined, kind, report)
        print(line(joined, flush(root, joined)), file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 (sending a report must never fail the student's command)
        print(f"class: report not sent ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)


def line(joined: dict, done: Flushed) -> str:
    """One line for the student: what happened to the queue and, when stuck, what to do."""
    lines = []
    if done.refused:
        lines.append(f"class: the room refused {len(done.refused)} report(s) for good: {done.refused[0]}")
    if done.left:
        queued = f"{done.left} report(s) queued"
        if done.stopped.startswith(("403", "404")):
            lines.append(f"class: the room at {joined['url']} answered {done.stopped}; {queued}. Join again with "
                         f'the code on the projector: invoke class.join {joined["url"]} --code CODE '
                         f'--name "{joined["name"]}" (then invoke class.send)')
        elif done.stopped.startswith("429"):
            lines.append(f"class: the room is busy (429 too many reports); {queued}, sent with the next one "
                         "(or invoke class.send in a minute)")
        elif done.stopped:
            lines.append(f"class: the room at {joined['url']} answered {done.stopped}; {queued}, "
                         "sent with the next one (or invoke class.send)")
        else:
            lines.append(f"class: room not reachable at {joined['url']}; {queued}, "
                         "sent with the next one (or invoke class.send)")
    if not lines:
        lines.append(f"class: report sent to the room as {joined['name']}")
    return "\n".join(lines)


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


def flush(root: Path, joined: dict) -> Flushed:
    """Post queued reports oldest first, as this laptop's seat (the one of the last join).

    Stops, keeping the rest, at the first that cannot be delivered now: unreachable, 403/404 (join
    again), 408, 429, 5xx. A report the room refuses for good (400, 409, 413, 422) is dropped with its
    reason, since sending it again cannot help; so is a queue file that is not a report (damaged).
    """
    import requests

    sent, refused = 0, []
    pending = sorted((state_dir(root) / QUEUE).glob("*.json"))
    with requests.Session() as session:
        for i, path in enumerate(pending):
            try:
                envelope = json.loads(path.read_text())
                if not isinstance(envelope, dict) or not {"kind", "taken", "report"} <= envelope.keys():
                    raise ValueError("not a queued report")
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # damaged: skipped, the rest still goes
                continue
            envelope.update(seat=joined["seat"], name=joined["name"], sent=time.time())
            try:
                answer = session.post(f"{joined['url']}/api/reports", json=envelope, timeout=TIMEOUT,
                                      headers={"X-Class-Code": joined["code"], "X-Seat-Key": joined["key"]})
            except requests.RequestException:
                return Flushed(sent, len(pending) - i, refused)
            if answer.status_code == 201:
                sent += 1
            elif answer.status_code in (403, 404, 408, 429) or answer.status_code >= 500:
                return Flushed(sent, len(pending) - i, refused, f"{answer.status_code} {_reason(answer)}".strip())
            else:
                refused.append(f"{answer.status_code} {_reason(answer)}".strip())
            path.unlink(missing_ok=True)
    return Flushed(sent, 0, refused)
