"""One way to say what a check found: doctor's rows, verify's checks, the section checks, the
acceptance phases and the room's cells all use this model.

    Result   what one check found: a status (pass | warn | fail | skip), a detail (what was seen),
             and for anything not passed a cause and a fix (the command to run next); `key` names
             the cause for tests and reports; a skip names the check that failed first (`blocked_by`)
    Check    an id, a title, what it needs (ids of checks that must pass first), a timeout, and a
             `run(timeout)` returning a Result; a reason known at planning time goes in `skip`
    run()    the one scheduler: each check starts as soon as what it needs has passed (concurrently
             with `workers` > 1, in order with 1); a dependant of a failure is skipped with the reason
             ("needs: <title of the check that failed>"), an exception or an overrun is that check's
             failure, never the end of the report
    as_json  the one JSON shape of a result list (schema `labkit-checks/1`, docs/design.md)

Domain checks subclass Check to carry what they show (verify's source and target, a section number);
the scheduler reads only the fields above.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
STATUSES = (PASS, WARN, FAIL, SKIP)
SCHEMA = "labkit-checks/1"
GRACE = 3.0  # beyond a check's own timeout, for whatever it runs to be killed and report


@dataclass(frozen=True)
class Result:
    status: str
    detail: str = ""
    cause: str = ""
    fix: str = ""
    key: str = ""
    blocked_by: Optional[str] = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"a check's status is one of {', '.join(STATUSES)}, not {self.status!r}")

    @property
    def ok(self) -> bool:
        """Nothing to do: passed, or passed with a warning."""
        return self.status in (PASS, WARN)


def passed(detail: str = "") -> Result:
    return Result(PASS, detail)


def warned(detail: str, cause: str = "", fix: str = "", key: str = "") -> Result:
    return Result(WARN, detail, cause, fix, key)


def failed(detail: str, cause: str = "", fix: str = "", key: str = "") -> Result:
    return Result(FAIL, detail, cause, fix, key)


def skipped(detail: str, blocked_by: Optional[str] = None) -> Result:
    return Result(SKIP, detail, blocked_by=blocked_by)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[float], Result]
    needs: tuple = ()
    timeout: float = 10.0
    skip: Optional[str] = None


@dataclass(frozen=True)
class Checked:
    """A check and what it found, with the seconds it took."""

    check: Check
    result: Result
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return self.result.status


def crashed(check: Check, error: str) -> Result:
    """The default for a check that raised or overran: its own failure, named, never a traceback."""
    return failed(error, f"the check '{check.title}' could not finish: {error}",
                  "run the same command again; if it repeats, send the output to your instructor", key="unexpected")


def run(checks: Iterable[Check], on_result: Optional[Callable[[Checked], None]] = None, workers: int = 1,
        unexpected: Callable[[Check, str], Result] = crashed) -> list[Checked]:
    """Run every check once its needs have passed; results in the order of `checks`.

    `unexpected(check, error)` makes the Result of a check that raised, returned None or overran its
    timeout (the scheduler stops waiting GRACE seconds after it; the check's own command must honour
    the timeout it is given)."""
    checks = list(checks)
    by_id = {c.id: c for c in checks}
    if len(by_id) != len(checks):
        raise ValueError("two checks share an id: " + ", ".join(sorted({c.id for c in checks if
                                                                      sum(d.id == c.id for d in checks) > 1})))
    results: dict[str, Checked] = {}
    pending = list(checks)
    running: dict = {}

    def record(checked: Checked) -> None:
        results[checked.check.id] = checked
        if on_result:
            on_result(checked)

    def timed(check: Check) -> Checked:
        started = time.monotonic()
        try:
            result = check.run(check.timeout)
            if not isinstance(result, Result):
                result = unexpected(check, f"no result ({type(result).__name__})")
        except Exception as exc:  # a bug or an unforeseen answer: this check's line, the rest go on
            result = unexpected(check, f"{type(exc).__name__}: {exc}")
        return Checked(check, result, time.monotonic() - started)

    workers = max(1, workers)
    # spare threads: an abandoned (overrun) check keeps its thread until its own timeout ends it
    pool = ThreadPoolExecutor(max_workers=workers + 4, thread_name_prefix="check")
    try:
        while pending or running:
            progressed = _schedule(pending, by_id, results, record, running, workers, pool, timed)
            if not running:
                if pending and not progressed:  # a cycle in `needs`: a bug in the list, said plainly
                    for c in list(pending):
                        record(Checked(c, unexpected(c, f"a cycle in the prerequisites of {c.id}")))
                    pending.clear()
                continue
            next_deadline = min(start + c.timeout + GRACE for c, start in running.values())
            done, _ = wait(list(running), timeout=max(next_deadline - time.monotonic(), 0.05),
                           return_when=FIRST_COMPLETED)
            for future in done:
                running.pop(future)
                record(future.result())
            now = time.monotonic()
            for future, (check, start) in list(running.items()):
                if now - start > check.timeout + GRACE:
                    running.pop(future)
                    future.cancel()
                    record(Checked(check, unexpected(check, f"no answer within {check.timeout:g}s"), now - start))
    finally:
        pool.shutdown(wait=False)  # an overrun check's thread ends with its own timeout
    return [results[c.id] for c in checks]


def _schedule(pending, by_id, results, record, running, workers, pool, timed) -> bool:
    progressed = False
    for check in list(pending):
        needs = [n for n in check.needs if n in by_id]
        if any(n not in results for n in needs):
            continue
        blocked = [results[n] for n in needs if not results[n].result.ok]
        if not blocked and not check.skip and len(running) >= workers:
            continue  # no free worker: its timeout starts when it starts
        pending.remove(check)
        progressed = True
        if blocked:
            root = root_of(blocked[0], results)
            why = f"needs: {root.check.title}" + (" (skipped)" if root.status == SKIP else "")
            why += f"; {check.skip}" if check.skip else ""
            record(Checked(check, skipped(why, blocked_by=root.check.id)))
        elif check.skip:
            record(Checked(check, skipped(check.skip)))
        else:
            running[pool.submit(timed, check)] = (check, time.monotonic())
    return progressed


def root_of(checked: Checked, results: dict) -> Checked:
    """A skipped prerequisite points further back: the check that actually failed."""
    seen = set()
    while checked.status == SKIP and checked.result.blocked_by and checked.result.blocked_by not in seen:
        seen.add(checked.result.blocked_by)
        checked = results.get(checked.result.blocked_by, checked)
    return checked


def counts(checked: Iterable[Checked]) -> dict:
    out = dict.fromkeys(STATUSES, 0)
    for c in checked:
        out[c.status] += 1
    return out


def all_ok(checked: list[Checked]) -> bool:
    return bool(checked) and all(c.result.ok for c in checked)


def first_problem(checked: Iterable[Checked]) -> Optional[Checked]:
    """The first check that failed, else the first skipped one: what a student should look at first."""
    checked = list(checked)
    return next((c for c in checked if c.status == FAIL), None) or next((c for c in checked if c.status == SKIP), None)


def entry(c: Checked) -> dict:
    """One check in the JSON shape every report uses (empty fields left out)."""
    r = c.result
    out = {"id": c.check.id, "title": c.check.title, "status": r.status, "seconds": round(c.seconds, 3)}
    for name in ("detail", "cause", "fix", "key", "blocked_by"):
        value = getattr(r, name)
        if value:
            out[name] = value
    return out


def as_json(checked: list[Checked], **fields) -> dict:
    """{"schema": "labkit-checks/1", <fields>, "summary": {...}, "checks": [entry, ...]}."""
    n = counts(checked)
    return {"schema": SCHEMA, **fields, "summary": {"checks": len(checked), **n, "ok": all_ok(checked)},
            "checks": [entry(c) for c in checked]}
