"""What a report posted to the room must look like, and how it maps onto the page's columns.

A student's laptop posts an envelope: who (seat id, name, host), what (kind), when (its own clock at
`taken` and at `sent`, so the server can place a queued report in its own time) and the report itself:
`invoke doctor --json`'s report (labkit-checks/1 with kind "doctor"; before it, a list of rows, still
read), section.check/progress's sections (labkit/student/progress.py), or verify's report: labkit-checks/1
with kind "verify" (labkit/verify/report.py), or the labkit-verify/1 report older labkit sent (still
accepted and read: rows of an earlier lesson in room.db, a laptop not yet updated).
"""
from __future__ import annotations

import functools
from typing import Optional

MAX_BODY = 256 * 1024  # bytes: a full verify report is about 20 KB
COLUMNS = ["doctor", "1", "2", "3", "4", "5", "6", "7", "8"]
KINDS = ["doctor", "progress", "verify"]
PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

_text = {"type": "string", "maxLength": 4000}
_short = {"type": "string", "maxLength": 200}

DOCTOR_ROWS = {  # doctor before labkit/checks.py: still read from queues and stores
    "type": "array", "maxItems": 200,
    "items": {"type": "object", "required": ["name", "status"],
              "properties": {"name": _short, "status": {"enum": ["ok", "warn", "fail"]},
                             "detail": _text, "fix": _text}},
}
DOCTOR_CHECKS = {  # labkit.checks.as_json(kind="doctor"): invoke doctor --json
    "type": "object", "required": ["schema", "kind", "checks"],
    "properties": {
        "schema": {"const": "labkit-checks/1"},
        "kind": {"const": "doctor"}, "host": _short,
        "checks": {"type": "array", "maxItems": 500, "items": {
            "type": "object", "required": ["id", "status"],
            "properties": {"id": _short, "title": _short, "status": {"enum": [PASS, WARN, FAIL, SKIP]},
                           "detail": _text, "cause": _text, "fix": _text, "key": _short}}},
    },
}
DOCTOR = {"oneOf": [DOCTOR_CHECKS, DOCTOR_ROWS]}

_label = {"type": "string", "pattern": "^[1-8](-[1-8])?$"}

def _verify_report(schema: str, statuses: list, check_fields: dict, **fields) -> dict:
    return {
        "type": "object", "required": ["schema", *fields, "checks"],
        "properties": {
            "schema": {"const": schema}, **fields,
            "host": _short,
            "sections": {"type": "array", "maxItems": 20, "items": _label},
            "checks": {"type": "array", "maxItems": 500, "items": {
                "type": "object", "required": ["id", "section", "status"],
                "properties": {"id": _short, "title": _short, "detail": _text, "section": _label,
                               "status": {"enum": statuses}, **check_fields}}},
        },
    }


# labkit.checks.as_json(kind="verify"), each check with its section, from and to
VERIFY = _verify_report("labkit-checks/1", [PASS, WARN, FAIL, SKIP], {"cause": _text, "fix": _text, "key": _short},
                        kind={"const": "verify"})
# labkit-verify/1, before the one check model: passed/failed/skipped, and cause and fix in a hint object
VERIFY_1 = _verify_report("labkit-verify/1", ["passed", "failed", "skipped"], {
    "hint": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"cause": _text, "fix": _text}}]}})

PROGRESS = {  # labkit/student/progress.py as_json: section.check and section.progress
    "type": "object", "required": ["sections"],
    "properties": {
        "node": _short,
        "sections": {"type": "array", "maxItems": 8, "items": {
            "type": "object", "required": ["section", "status"],
            "properties": {
                "section": {"type": "integer", "minimum": 1, "maximum": 8},
                "title": _short,
                "status": {"enum": ["done", "in progress", "not started"]},
                "first_failure": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                    "check": _short, "title": _short, "cause": _text, "next": _text}}]},
            }}},
    },
}

ENVELOPE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["seat", "name", "kind", "taken", "sent", "report"],
    "additionalProperties": False,
    "properties": {
        "seat": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 60},
        "host": {"type": "string", "maxLength": 100},
        "kind": {"enum": KINDS},
        "taken": {"type": "number"},
        "sent": {"type": "number"},
        "report": {},
    },
    "allOf": [
        {"if": {"properties": {"kind": {"const": "doctor"}}}, "then": {"properties": {"report": DOCTOR}}},
        {"if": {"properties": {"kind": {"const": "progress"}}}, "then": {"properties": {"report": PROGRESS}}},
        {"if": {"properties": {"kind": {"const": "verify"}}},
         "then": {"properties": {"report": {"anyOf": [VERIFY, VERIFY_1]}}}},
    ],
}


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(ENVELOPE)  # built once: building it costs more than a validation


def problem(envelope) -> Optional[str]:
    """None if the envelope is valid, else the first schema error as one short sentence."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(envelope))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the report"
    return f"{where}: {error.message[:200]}"


def columns_of(label: str) -> list[str]:
    """A verify section label ("3-4", "5") -> the page's columns it stands for."""
    first, _, last = label.partition("-")
    return [str(n) for n in range(int(first), int(last or first) + 1)]


def cells(kind: str, report) -> dict:
    """column -> (state, first problem as {check, detail, hint} or None) for the columns this report covers."""
    if kind == "doctor":
        rows = report if isinstance(report, list) else report["checks"]  # a list: doctor before labkit-checks/1
        worst = next((c for c in rows if c["status"] == FAIL), None) or \
            next((c for c in rows if c["status"] == WARN), None)
        state = PASS if worst is None else FAIL if worst["status"] == FAIL else WARN
        first = None if worst is None else {"check": worst.get("title") or worst.get("name") or worst.get("id", ""),
                                            "detail": worst.get("detail", ""), "hint": worst.get("fix", "")}
        return {"doctor": (state, first)}
    if kind == "progress":  # a section in progress is failing a check: "needs help" counts how long
        out = {}
        for sec in report["sections"]:
            f = sec.get("first_failure")
            state = {"done": PASS, "in progress": FAIL}.get(sec["status"], SKIP)
            out[str(sec["section"])] = (state, None if not f or state != FAIL else {
                "check": f.get("title") or f.get("check", ""), "detail": f.get("cause", ""), "hint": f.get("next", "")})
        return out
    labels = report.get("sections") or sorted({c["section"] for c in report["checks"]})
    out = {}
    for label in labels:
        checks = [_verify_check(c) for c in report["checks"] if c["section"] == label]
        bad = next((c for c in checks if c["status"] == FAIL), None)
        if bad is not None:
            state, first = FAIL, {"check": bad.get("title") or bad["id"], "detail": bad.get("detail", ""),
                                  "hint": " ".join(x for x in (bad.get("cause"), bad.get("fix")) if x)}
        elif checks and all(c["status"] in (PASS, WARN) for c in checks):
            state, first = PASS, None
        else:
            state, first = SKIP, None
        for col in columns_of(label):
            out[col] = (state, first)
    return out


OLD_STATUS = {"passed": PASS, "failed": FAIL, "skipped": SKIP}  # labkit-verify/1's words


def _verify_check(c: dict) -> dict:
    """One check of a verify report in labkit-checks/1's words (a labkit-verify/1 entry converted)."""
    if c["status"] not in OLD_STATUS:
        return c
    hint = c.get("hint") or {}
    return {**c, "status": OLD_STATUS[c["status"]], "cause": hint.get("cause"), "fix": hint.get("fix")}
