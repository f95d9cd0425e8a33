"""Run the checklist concurrently: each check starts as soon as what it needs has passed.

Per-check timeouts: every probe hands its timeout to the backend (which kills the command), and
the runner stops waiting for a check that overruns it anyway (a stuck SSH channel, say), so one
bad check can never hold up the report.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Optional

from labkit.verify import hints
from labkit.verify.model import PASSED, SKIPPED, LabCheck, Outcome, CheckResult, failed

GRACE = 3.0  # beyond a check's own timeout, for the backend to kill and report
WORKERS = 8  # concurrent probes: each is an SSH channel or a kubectl exec on a 2-CPU VM


def run(checks: list[LabCheck], on_result: Optional[Callable[[CheckResult], None]] = None,
        workers: int = WORKERS) -> list[CheckResult]:
    by_id = {c.id: c for c in checks}
    results: dict[str, CheckResult] = {}
    pending = list(checks)
    running: dict = {}

    def record(result: CheckResult) -> None:
        results[result.check.id] = result
        if on_result:
            on_result(result)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
    try:
        while pending or running:
            progressed = _schedule(pending, by_id, results, record, pool, running)
            if not running:
                if pending and not progressed:  # a cycle in `needs`: a bug in the plan, say so plainly
                    for c in pending:
                        record(CheckResult(c, failed("its prerequisites form a cycle", hints.make(
                            "unexpected", error=f"a cycle in the prerequisites of {c.id}", source=c.source)), 0.0))
                    pending.clear()
                continue
            now = time.monotonic()
            next_deadline = min(start + c.timeout + GRACE for c, start in running.values())
            done, _ = wait(list(running), timeout=max(next_deadline - now, 0.05), return_when=FIRST_COMPLETED)
            for future in done:
                check, _start = running.pop(future)
                record(future.result())
            now = time.monotonic()
            for future, (check, start) in list(running.items()):
                if now - start > check.timeout + GRACE:
                    running.pop(future)
                    future.cancel()
                    record(CheckResult(check, failed(f"no answer within {check.timeout:g}s",
                                                hints.make("timeout", seconds=f"{check.timeout:g}", source=check.source)),
                                  now - start))
    finally:
        pool.shutdown(wait=False)  # an overrun probe's thread ends with its backend timeout
    return [results[c.id] for c in checks]


def _schedule(pending, by_id, results, record, pool, running) -> bool:
    progressed = False
    for check in list(pending):
        needs = [n for n in check.needs if n in by_id]
        if any(n not in results for n in needs):
            continue
        pending.remove(check)
        progressed = True
        blocked = [results[n] for n in needs if results[n].status != PASSED]
        if blocked:
            root = _root(blocked[0], results)
            why = f"needs: {root.check.title}" + (" (skipped)" if root.status == SKIPPED else "")
            why += f"; {check.skip}" if check.skip else ""  # the planned reason too (pod X is not Ready)
            record(CheckResult(check, Outcome(SKIPPED, why, blocked_by=root.check.id), 0.0))
        elif check.skip:
            record(CheckResult(check, Outcome(SKIPPED, check.skip), 0.0))
        else:
            running[pool.submit(_timed, check)] = (check, time.monotonic())
    return progressed


def _root(result: CheckResult, results: dict) -> CheckResult:
    """A skipped prerequisite points further back: name the check that actually failed."""
    seen = set()
    while result.status == SKIPPED and result.outcome.blocked_by and result.outcome.blocked_by not in seen:
        seen.add(result.outcome.blocked_by)
        result = results[result.outcome.blocked_by]
    return result


def _timed(check: LabCheck) -> CheckResult:
    started = time.monotonic()
    try:
        outcome = check.run(check.timeout)
        if outcome is None:
            outcome = failed("nothing to probe", hints.make("unexpected", error="no target", source=check.source))
    except Exception as exc:  # a bug or an unforeseen answer: report it on this line, keep the rest
        outcome = failed(f"{type(exc).__name__}: {exc}",
                         hints.make("unexpected", error=f"{type(exc).__name__}: {exc}", source=check.source))
    return CheckResult(check, outcome, time.monotonic() - started)

