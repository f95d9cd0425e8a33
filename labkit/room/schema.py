"""What a report posted to the room must look like, and how it maps onto the page's columns.

A student's laptop posts an envelope: who (seat id, name, host), what (kind), when (its own clock at
`taken` and at `sent`, so the server can place a queued report in its own time) and the report itself:
`invoke doctor --json`'s report (labkit-checks/1; before it, a list of rows, still read), section.check/progress's
sections (labkit/student/progress.py), verify's report: labkit-checks/1 with kind "verify"
(labkit/verify/report.py), or the labkit-verify/1 report older labkit sent (still accepted and read:
rows of an earlier lesson in room.db, a laptop not yet updated), or an acceptance run's report
(labkit/room/laptops.py).

Hostile input is refused before the schema sees it: `parse` accepts only finite numbers (Python's json
takes NaN, Infinity and 1e400), answers nesting too deep for Python as not JSON; `problem` refuses text
SQLite cannot store (lone surrogates), times outside any laptop's clock and a report older than the
queue can be. Every object is closed (additionalProperties false): nothing unnamed is stored.
"""
from __future__ import annotations

import functools
import json
import math
import unicodedata
from typing import Optional

MAX_BODY = 256 * 1024  # bytes: a full verify report is about 20 KB
MAX_NAME = 60
MAX_DEPTH = 12          # the deepest real report is 5 levels (envelope/report/checks/item/hint)
MAX_TIME = 1e11         # seconds since 1970 (year 5138): any laptop's clock, right or wrong, is below
MAX_AGE = 30 * 86400    # a report queued longer than a month (sent - taken) is not this course's
CLOCK_SLACK = 300       # taken may follow sent by this much (the laptop's clock was set back meanwhile)
COLUMNS = ["doctor", "1", "2", "3", "4", "5", "6", "7", "8"]
KINDS = ["doctor", "progress", "verify", "acceptance"]
PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

_text = {"type": "string", "maxLength": 4000}
_short = {"type": "string", "maxLength": 200}
_maybe_short = {"type": ["string", "null"], "maxLength": 200}
_seconds = {"type": "number", "minimum": 0, "maximum": 1e7}
_count = {"type": "integer", "minimum": 0, "maximum": 100000}


def closed(properties: dict, required=()) -> dict:
    """An object with exactly these properties (any may be left out unless required)."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


DOCTOR_ROWS = {  # doctor before labkit/checks.py (a list of rows): still read from queues and stores
    "type": "array", "maxItems": 200,
    "items": closed({"name": _short, "status": {"enum": ["ok", "warn", "fail"]}, "detail": _text, "fix": _text},
                    ["name", "status"]),
}
CHECKS = {  # labkit.checks.as_json (labkit-checks/1): its own fields, plus the sender's scalar fields (kind, host, time)
    "type": "object", "required": ["schema", "checks"],
    "properties": {
        "schema": {"const": "labkit-checks/1"},
        "kind": _short, "host": _short, "time": _short,
        "summary": closed({"checks": _count, PASS: _count, WARN: _count, FAIL: _count, SKIP: _count,
                           "ok": {"type": "boolean"}}),
        "checks": {"type": "array", "maxItems": 500, "items": closed({
            "id": _short, "title": _short, "status": {"enum": [PASS, WARN, FAIL, SKIP]}, "seconds": _seconds,
            "detail": _text, "cause": _text, "fix": _text, "key": _short, "blocked_by": _maybe_short},
            ["id", "status"])},
    },
    "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 200},
}
DOCTOR = {"oneOf": [CHECKS, DOCTOR_ROWS]}

_label = {"type": "string", "pattern": "^[1-8](-[1-8])?$"}
_lab = closed({k: _maybe_short for k in ("node", "node_ip", "pod_cidr", "service_cidr", "kube_dns", "kubernetes")})
_verify_common = {"host": _short, "started": _short, "seconds": _seconds, "lab": _lab,
                  "sections": {"type": "array", "maxItems": 20, "items": _label}}
_verify_fields = {"id": _short, "title": _short, "detail": _text, "section": _label, "from": _maybe_short,
                 "to": _maybe_short, "seconds": _seconds, "blocked_by": _maybe_short}

# labkit.checks.as_json(kind="verify") (labkit/verify/report.py), each check with its section, from and to
VERIFY = closed({
    "schema": {"const": "labkit-checks/1"}, "kind": {"const": "verify"}, **_verify_common,
    "summary": closed({"checks": _count, PASS: _count, WARN: _count, FAIL: _count, SKIP: _count,
                       "ok": {"type": "boolean"}}),
    "checks": {"type": "array", "maxItems": 500, "items": closed({
        **_verify_fields, "status": {"enum": [PASS, WARN, FAIL, SKIP]}, "cause": _text, "fix": _text, "key": _short,
    }, ["id", "section", "status"])},
}, ["schema", "kind", "checks"])
# labkit-verify/1, before the one check model: passed/failed/skipped, and cause and fix in a hint object
VERIFY_1 = closed({
    "schema": {"const": "labkit-verify/1"}, **_verify_common,
    "summary": closed({"checks": _count, "passed": _count, "failed": _count, "skipped": _count,
                       "ok": {"type": "boolean"}}),
    "checks": {"type": "array", "maxItems": 500, "items": closed({
        **_verify_fields, "status": {"enum": ["passed", "failed", "skipped"]},
        "hint": {"oneOf": [{"type": "null"}, closed({"key": _maybe_short, "cause": _text, "fix": _text})]},
    }, ["id", "section", "status"])},
}, ["schema", "checks"])

_section_number = {"type": "integer", "minimum": 1, "maximum": 8}
PROGRESS = closed({  # labkit/student/progress.py as_json: section.check and section.progress
    "node": _short,
    "current": {"oneOf": [{"type": "null"}, _section_number]},
    "sections": {"type": "array", "maxItems": 8, "items": closed({
        "section": _section_number,
        "title": _short,
        "status": {"enum": ["done", "in progress", "not started"]},
        "blocked_by": {"oneOf": [{"type": "null"}, _section_number]},
        "first_failure": {"oneOf": [{"type": "null"}, closed({
            "check": _short, "title": _short, "cause": _text, "next": _text})]},
    }, ["section", "status"])},
}, ["sections"])

ACCEPTANCE = closed({  # labkit/room/laptops.py from_markdown: invoke acceptance's report (docs/acceptance.md)
    "schema": {"const": "labkit-acceptance/1"},
    "started": _short,
    "laptop": {"type": "object", "maxProperties": 40, "propertyNames": {"maxLength": 60},
               "additionalProperties": {"type": "string", "maxLength": 1000}},
    "phases": {"type": "array", "minItems": 1, "maxItems": 40, "items": closed({
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,60}$"},
        "status": {"enum": [PASS, WARN, FAIL, SKIP]},
        "started": _short, "seconds": _seconds, "error": _text, "reason": _text, "hint": _text,
    }, ["name", "status"])},
}, ["schema", "phases"])

ENVELOPE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["seat", "name", "kind", "taken", "sent", "report"],
    "additionalProperties": False,
    "properties": {
        "seat": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
        "host": {"type": "string", "maxLength": 100},
        "kind": {"enum": KINDS},
        "taken": {"type": "number", "minimum": 0, "maximum": MAX_TIME},
        "sent": {"type": "number", "minimum": 0, "maximum": MAX_TIME},
        "report": {},
    },
    "allOf": [
        {"if": {"properties": {"kind": {"const": "doctor"}}}, "then": {"properties": {"report": DOCTOR}}},
        {"if": {"properties": {"kind": {"const": "progress"}}}, "then": {"properties": {"report": PROGRESS}}},
        {"if": {"properties": {"kind": {"const": "verify"}}},
         "then": {"properties": {"report": {"anyOf": [VERIFY, VERIFY_1]}}}},
        {"if": {"properties": {"kind": {"const": "acceptance"}}}, "then": {"properties": {"report": ACCEPTANCE}}},
    ],
}


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(ENVELOPE)  # built once: building it costs more than a validation


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def parse(body: bytes):
    """The body as JSON, with finite numbers only; ValueError (one short reason) if it is not that."""
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None


def _unfit(value, depth: int = 0) -> Optional[str]:
    """What no schema can say: nesting depth, text that is not Unicode, numbers that are not finite."""
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text with a lone surrogate (not Unicode)"
    elif isinstance(value, float) and not math.isfinite(value):
        return "a number that is not finite"
    elif isinstance(value, dict):
        return next(filter(None, (_unfit(k, depth + 1) or _unfit(v, depth + 1) for k, v in value.items())), None)
    elif isinstance(value, list):
        return next(filter(None, (_unfit(v, depth + 1) for v in value)), None)
    return None


def problem(envelope) -> Optional[str]:
    """None if the envelope is valid, else the first problem as one short sentence."""
    import jsonschema

    unfit = _unfit(envelope)
    if unfit:
        return f"the report: {unfit}"
    error = jsonschema.exceptions.best_match(_validator().iter_errors(envelope))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the report"
        return f"{where}: {error.message[:200]}"
    if problem_of_name(envelope["name"]):
        return f"name: {problem_of_name(envelope['name'])}"
    age = envelope["sent"] - envelope["taken"]
    if not -CLOCK_SLACK <= age <= MAX_AGE:
        return (f"sent: {age:.0f} s after taken; a report is sent at most {MAX_AGE // 86400} days "
                "after it was taken, never before")
    return None


def clean_text(text: str) -> str:
    """NFC, without control or format characters (bidi overrides, zero-width), whitespace collapsed."""
    kept = []
    for ch in unicodedata.normalize("NFC", text):
        if ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch)[0] != "C":  # Cc control, Cf format, Cs surrogate, Co private, Cn unassigned
            kept.append(ch)
    return " ".join("".join(kept).split())


def problem_of_name(name: str) -> Optional[str]:
    """None if `name` can stand on the page for a student (after clean_text), else why not."""
    if _unfit(name):
        return _unfit(name)
    if len(name) > MAX_NAME:
        return f"at most {MAX_NAME} characters"
    if not visible(clean_text(name)):
        return "needs a letter, digit or sign one can see"
    return None


def visible(text: str) -> bool:
    """A letter, digit, punctuation or symbol: something a name on the page can be told by."""
    return any(unicodedata.category(ch)[0] in "LNPS" for ch in text)


def normalised(envelope: dict) -> dict:
    """A valid envelope (problem() is None) with its name and host as the page shows them."""
    return dict(envelope, name=clean_text(envelope["name"]), host=clean_text(envelope.get("host", "")))


def columns_of(label: str) -> list[str]:
    """A verify section label ("3-4", "5") -> the page's columns it stands for."""
    first, _, last = label.partition("-")
    return [str(n) for n in range(int(first), int(last or first) + 1)]


def cells(kind: str, report) -> dict:
    """column -> (state, first problem as {check, detail, hint} or None) for the columns this report covers."""
    if kind == "acceptance":
        return {}  # the laptops view (laptops.py), not the grid
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
