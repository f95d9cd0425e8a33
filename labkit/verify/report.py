"""The verdict: one table, a summary line, the hints for what failed, and the JSON report."""
from __future__ import annotations

import datetime
import json
import platform
import re
from pathlib import Path
from typing import Optional

from labkit import ui
from labkit.verify.model import FAILED, PASSED, SECTION_LABEL, SKIPPED, Lab, CheckResult

COLUMNS = ["section", "check", "from → to", "result", "time"]


def counts(results: list[CheckResult]) -> dict:
    out = {PASSED: 0, FAILED: 0, SKIPPED: 0}
    for r in results:
        out[r.status] += 1
    return out


def all_passed(results: list[CheckResult]) -> bool:
    return bool(results) and all(r.status == PASSED for r in results)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def rows(results: list[CheckResult]) -> list[list[str]]:
    m = ui.marks()
    out = []
    for r in results:
        c, o = r.check, r.outcome
        result = f"{m[o.status if o.status != PASSED else 'ok']} {o.status}"
        if o.detail:
            result += f": {_short(o.detail, 40)}"
        time_text = "" if o.status == SKIPPED else ui.fmt_seconds(r.seconds)
        out.append([SECTION_LABEL.get(c.section, str(c.section)), c.title, f"{c.source} → {c.target}", result, time_text])
    return out


def summary_line(results: list[CheckResult], seconds: float) -> str:
    n = counts(results)
    if all_passed(results):
        return f"All {len(results)} checks passed in {ui.fmt_seconds(seconds)}."
    return (f"{len(results)} checks: {n[PASSED]} passed, {n[FAILED]} failed, {n[SKIPPED]} skipped "
            f"in {ui.fmt_seconds(seconds)}.")


def hint_lines(results: list[CheckResult]) -> list[str]:
    """The failures' hints, and the warnings' (a passed check with a hint: model.warned)."""
    mark = ui.marks()["failed"]
    lines = []
    for r in results:
        warning = r.status == PASSED and r.outcome.hint is not None
        if r.status != FAILED and not warning:
            continue
        c, o = r.check, r.outcome
        lines.append(f"{'! warning:' if warning else mark} {c.title}  ({c.source} → {c.target})")
        lines.append(f"    found: {o.detail}")
        if o.hint:
            lines.append(f"    cause: {o.hint.cause}")
            lines.append(f"    fix:   {o.hint.fix}")
    return lines


def show(results: list[CheckResult], seconds: float) -> None:
    ui.table("Lab 7 checks", COLUMNS, rows(results))
    ui.say(summary_line(results, seconds))
    lines = hint_lines(results)
    if lines:
        ui.say("")
        ui.say("What to do:")
        for line in lines:  # "    cause: ..." continues under its text; a fix is a command: kept whole
            label = re.match(r"\s*(?:\w+:\s+)?", line).end()
            if line.lstrip().startswith("fix:"):
                ui.say(line)
            else:
                ui.say_wrapped(line, label if label > 2 else 4)


def as_json(results: list[CheckResult], lab: Lab, seconds: float, started: datetime.datetime,
            sections: Optional[list] = None) -> dict:
    n = counts(results)
    return {
        "schema": "labkit-verify/1",
        "host": platform.node(),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "sections": sections or sorted(SECTION_LABEL.values()),
        "lab": {"node": lab.node, "node_ip": lab.node_ip, "pod_cidr": str(lab.pod_cidr),
                "service_cidr": str(lab.service_cidr), "kube_dns": lab.kube_dns_ip,
                "kubernetes": lab.kubernetes_version},
        "summary": {"checks": len(results), "passed": n[PASSED], "failed": n[FAILED], "skipped": n[SKIPPED],
                    "ok": all_passed(results)},
        "checks": [{
            "id": r.check.id,
            "section": SECTION_LABEL.get(r.check.section, str(r.check.section)),
            "title": r.check.title,
            "from": r.check.source,
            "to": r.check.target,
            "status": r.status,
            "seconds": round(r.seconds, 3),
            "detail": r.outcome.detail,
            "blocked_by": r.outcome.blocked_by,
            "hint": None if r.outcome.hint is None else {
                "key": r.outcome.hint.key, "cause": r.outcome.hint.cause, "fix": r.outcome.hint.fix},
        } for r in results],
    }


def check_writable(path) -> None:
    """Refuse a --json path that cannot be written, before any check runs (one line, never a traceback).

    The directory must exist (a typo must not create directories) and take a new file: the probe is a
    real temporary file there, which also catches /proc, read-only mounts and missing permissions."""
    import os
    import tempfile

    from labkit.errors import LabkitError

    fix = "pass --json a file name in an existing directory you can write, like --json verify-report.json"
    text = str(path).strip()
    if not text:
        raise LabkitError("--json was given no file name", fix)
    target = Path(text)
    parent = target.parent
    if target.is_dir():
        raise LabkitError(f"--json {text} is a directory", fix)
    if not parent.is_dir():
        problem = "is not a directory" if parent.exists() or any(p.is_file() for p in parent.parents) else "does not exist"
        raise LabkitError(f"--json {text}: {parent} {problem}", fix)
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LabkitError(f"--json {text}: cannot write in {parent} ({exc.strerror or exc})", fix) from None


def write_json(path: Path, report: dict) -> None:
    from labkit.fsutil import write_atomic

    write_atomic(Path(path), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
