"""The class's laptops: `invoke acceptance`'s report, sent to the room, and the instructor's table of them.

A student runs `invoke acceptance` (the week before the course, say), joins the room, then
`invoke class.send --report acceptance-<laptop>-<time>.md`. The report is the Markdown file the acceptance run
writes, in the format docs/acceptance.md documents (a fact table, one `### phase: status` section per
phase with its start, time, error and hint); `from_markdown` reads that into the room's `acceptance`
kind (schema.ACCEPTANCE), every string passed through labkit.acceptance.redact once more (the file may
have been edited by hand). The room keeps each seat's latest one; `view` is one row per seat.
"""
from __future__ import annotations

import re

SCHEMA = "labkit-acceptance/1"
SHOWN = ["host os", "cpu", "ram", "virtualbox", "vagrant", "provider"]  # the table's columns; all facts are kept
STATUS = {"passed": "pass", "failed": "fail", "skipped": "skip", "pass": "pass", "fail": "fail", "skip": "skip",
          "warn": "warn"}
MAX_FACTS, MAX_PHASES, MAX_VALUE = 40, 40, 1000

_STARTED = re.compile(r"^Run started (?P<at>\S+) \(UTC\)\.$")
_PHASE = re.compile(r"^### (?P<name>[\w.-]+): (?P<status>\w+)$")
_TOOK = re.compile(r"^- started (?P<at>\S+), took (?P<seconds>\d+(?:\.\d+)?)s$")
_FIELD = re.compile(r"^- (?P<key>error|reason|hint): (?P<value>.*)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(line.strip())[1:-1]]


def from_markdown(text: str) -> dict:
    """The room's acceptance report from the Markdown file; ValueError (one short reason) if it is not one."""
    from labkit.acceptance import redact

    lines = text.splitlines()
    if not lines or lines[0].strip() != "# labkit acceptance report":
        raise ValueError("it does not start with '# labkit acceptance report' (docs/acceptance.md)")
    started, laptop, phases, part, fenced, current = "", {}, [], "", False, None
    for line in lines[1:]:
        if line.startswith("```"):
            fenced = not fenced  # command output and logs: never read as report structure
            continue
        if fenced:
            continue
        if line.startswith("## "):
            part, current = line[3:].strip(), None
            continue
        if (m := _STARTED.match(line)) and not started:
            started = m["at"]
        elif part == "The laptop" and line.startswith("|"):
            row = _cells(line)
            if len(row) == 2 and row[0] not in ("fact", "---") and not set(row[0]) <= {"-"}:
                if len(laptop) < MAX_FACTS:
                    laptop[row[0][:60]] = row[1][:MAX_VALUE]
        elif part == "Phases" and (m := _PHASE.match(line)):
            if m["status"] not in STATUS:
                raise ValueError(f"phase {m['name']} has the status {m['status']!r}")
            current = {"name": m["name"], "status": STATUS[m["status"]]}
            if len(phases) < MAX_PHASES:
                phases.append(current)
        elif part == "Phases" and current is not None:
            if m := _TOOK.match(line):
                current["started"], current["seconds"] = m["at"], float(m["seconds"])
            elif m := _FIELD.match(line):
                current["error" if m["key"] == "reason" and current["status"] != "skip" else m["key"]] = \
                    m["value"][:MAX_VALUE]
    if not phases:
        raise ValueError("it has no phases (### phase: passed|failed|skipped)")
    report = {"schema": SCHEMA, "started": started[:60], "laptop": laptop, "phases": phases}
    return _redacted(report, redact)


def _redacted(value, redact):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {redact(k): _redacted(v, redact) for k, v in value.items()}
    return value


def view(rows: list, now: float) -> dict:
    """One row per seat from (seat, name, host, at, id, report) of each seat's latest acceptance report."""
    phases: list[str] = []
    laptops = []
    for seat, name, host, at, rid, report in rows:
        for p in report["phases"]:
            if p["name"] not in phases:
                phases.append(p["name"])
        laptops.append({"seat": seat, "name": name, "host": host, "at": at, "report": rid,
                        "started": report.get("started", ""), "laptop": report.get("laptop", {}),
                        "phases": {p["name"]: p for p in report["phases"]}})
    return {"now": now, "shown": SHOWN, "phases": phases, "laptops": laptops}


def csv_text(view: dict) -> str:
    """The laptops as CSV: every fact, then per phase its result, time and (if it failed) error and hint."""
    import csv
    import io

    from labkit.room.store import spreadsheet_safe

    facts: list[str] = []
    for lap in view["laptops"]:
        facts += [k for k in lap["laptop"] if k not in facts]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "host", "run_started"] + facts +
                    [h for p in view["phases"] for h in (p, f"{p}_seconds", f"{p}_problem")])
    for lap in view["laptops"]:
        row = [lap["name"], lap["host"], lap["started"]] + [lap["laptop"].get(k, "") for k in facts]
        for name in view["phases"]:
            p = lap["phases"].get(name) or {}
            problem = " | hint: ".join(x for x in (p.get("error") or p.get("reason"), p.get("hint")) if x)
            row += [p.get("status", ""), p.get("seconds", ""), problem]
        writer.writerow([spreadsheet_safe(v) for v in row])
    return out.getvalue()
