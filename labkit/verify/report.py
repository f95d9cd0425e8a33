"""The verdict: one table, a summary line, the hints for what failed, and the JSON report.

Results are labkit.checks' (statuses pass | fail | skip, and warn: a lab that works but not as the check wants
to see it, listed under "What to do" without failing verify; svc.nodes); the JSON is
`checks.as_json` with kind "verify" and, per check, its section and from → to (docs/verify.md).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import tempfile
from pathlib import Path
from typing import Optional

from labkit import checks, ui
from labkit.errors import LabkitError
from labkit.fsutil import write_atomic
from labkit.checks import FAIL, PASS, SKIP, WARN, Checked
from labkit.text import short
from labkit.verify.model import SECTION_LABEL, Lab

COLUMNS = ["section", "check", "from → to", "result", "time"]
MARK = {PASS: "ok", WARN: "ok", FAIL: "failed", SKIP: "skipped"}  # ui.marks()'s name for each status


def all_passed(results: list[Checked]) -> bool:
    return checks.all_ok(results)


def rows(results: list[Checked]) -> list[list[str]]:
    m = ui.marks()
    out = []
    for r in results:
        c, o = r.check, r.result
        result = f"{m[MARK[o.status]]} {o.status}"
        if o.detail:
            result += f": {short(o.detail, 40)}"
        time_text = "" if o.status == SKIP else ui.fmt_seconds(r.seconds)
        out.append([SECTION_LABEL.get(c.section, str(c.section)), c.title, f"{c.source} → {c.target}", result, time_text])
    return out


def summary_line(results: list[Checked], seconds: float) -> str:
    n = checks.counts(results)
    if all_passed(results):
        warned = f", {n[WARN]} with a warning" if n[WARN] else ""
        return f"{len(results)} checks: all pass{warned} in {ui.fmt_seconds(seconds)}."
    return f"{len(results)} checks: {n[PASS]} pass, {n[FAIL]} fail, {n[SKIP]} skip in {ui.fmt_seconds(seconds)}."


def hint_lines(results: list[Checked]) -> list[str]:
    """What failed, then what passed with a warning, each with its cause and fix."""
    mark = ui.marks()["failed"]
    lines = []
    for r in [r for r in results if r.status == FAIL] + [r for r in results if r.status == WARN]:
        c, o = r.check, r.result
        lines.append(f"{mark if r.status == FAIL else '! warning:'} {c.title}  ({c.source} → {c.target})")
        lines.append(f"    found: {o.detail}")
        if o.cause:
            lines.append(f"    cause: {o.cause}")
        if o.fix:
            lines.append(f"    fix:   {o.fix}")
    return lines


def show(results: list[Checked], seconds: float) -> None:
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


def as_json(results: list[Checked], lab: Lab, seconds: float, started: datetime.datetime,
            sections: Optional[list] = None) -> dict:
    """checks.as_json (schema labkit-checks/1) with kind "verify"; each entry adds section, from and to."""
    report = checks.as_json(
        results, kind="verify", host=platform.node(), started=started.isoformat(timespec="seconds"),
        seconds=round(seconds, 3), sections=sections or sorted(SECTION_LABEL.values()),
        lab={"node": lab.node, "node_ip": lab.node_ip, "pod_cidr": str(lab.pod_cidr),
             "service_cidr": str(lab.service_cidr), "kube_dns": lab.kube_dns_ip, "kubernetes": lab.kubernetes_version})
    for entry, r in zip(report["checks"], results):
        entry.update({"section": SECTION_LABEL.get(r.check.section, str(r.check.section)),
                      "from": r.check.source, "to": r.check.target})
    return report


def check_writable(path) -> None:
    """Refuse a --json path that cannot be written, before any check runs (one line, never a traceback).

    The directory must exist (a typo must not create directories) and take a new file: the probe is a
    real temporary file there, which also catches /proc, read-only mounts and missing permissions."""
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
    write_atomic(Path(path), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
