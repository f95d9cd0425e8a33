"""Status lines in the style of kind: one line per step, with elapsed time, and a timing summary.

    • Creating VM ubuntu (virtualbox)
      │ ==> ubuntu: Importing base box 'ubuntu/xenial64'...
    ✓ Creating VM ubuntu  52.1s

Plain text when output is not a terminal (CI logs, pipes); rich only when it is. rich is imported
lazily so `invoke --list` stays fast.
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass
class StepResult:
    title: str
    seconds: float
    outcome: str  # ok | failed | skipped | interrupted
    note: str = ""


# Every step this process ran, in order: `lab` prints them as its summary.
HISTORY: list[StepResult] = []


def _utf8() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return encoding in ("utf8", "utf8sig")


def marks() -> dict:
    if _utf8():
        return {"start": "•", "ok": "✓", "failed": "✗", "skipped": "–", "interrupted": "✗", "pipe": "│"}
    return {"start": "*", "ok": "ok", "failed": "FAIL", "skipped": "-", "interrupted": "INT", "pipe": "|"}


def console():
    from rich.console import Console

    global _CONSOLE
    if _CONSOLE is None:
        _CONSOLE = Console(highlight=False, soft_wrap=True)
    return _CONSOLE


_CONSOLE = None


def say(text: str = "") -> None:
    """A plain line on stdout."""
    print(text, flush=True)


def warn(text: str) -> None:
    print(f"labkit: warning: {text}", file=sys.stderr, flush=True)


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


class Step:
    """Handle passed to the body of `step()`: log subprocess lines, or finish early with a note."""

    def __init__(self, title: str):
        self.title = title
        self.note = ""
        self.outcome = "ok"
        self.started = time.monotonic()

    def log(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if line.strip():
            _print(f"  {marks()['pipe']} {line}")

    def skip(self, note: str) -> None:
        """Nothing to do (idempotent re-run): the step ends as skipped with this note."""
        self.outcome, self.note = "skipped", note

    def elapsed(self) -> float:
        return time.monotonic() - self.started


_LIVE = threading.local()  # the spinner of the step running in this thread, on a terminal


def _print(text: str) -> None:
    """A line of output; above the spinner when one is showing."""
    if getattr(_LIVE, "status", None) is not None:
        console().print(text, markup=False, highlight=False)
    else:
        print(text, flush=True)


@contextmanager
def _spinner(title: str, current: "Step") -> Iterator[None]:
    """On a terminal: a spinner with the elapsed time under the streamed lines (quiet steps still move)."""
    if not sys.stdout.isatty() or getattr(_LIVE, "status", None) is not None:
        yield
        return
    done = threading.Event()
    with console().status(title) as status:
        _LIVE.status = status

        def tick() -> None:
            while not done.wait(1.0):
                status.update(f"{title}  {fmt_seconds(current.elapsed())}")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
            _LIVE.status = None


@contextmanager
def step(title: str) -> Iterator[Step]:
    m = marks()
    current = Step(title)
    _print(f"{m['start']} {title}")
    try:
        with _spinner(title, current):
            yield current
    except KeyboardInterrupt:
        current.outcome = "interrupted"
        raise
    except BaseException:
        current.outcome = "failed"
        raise
    finally:
        seconds = current.elapsed()
        HISTORY.append(StepResult(title, seconds, current.outcome, current.note))
        note = f" ({current.note})" if current.note else ""
        _print(f"{m[current.outcome]} {title}{note}  {fmt_seconds(seconds)}")


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table: rich box drawing on a terminal, aligned plain text elsewhere."""
    if sys.stdout.isatty():
        from rich.table import Table

        t = Table(title=title, title_justify="left")
        for c in columns:
            t.add_column(c)
        for r in rows:
            t.add_row(*[str(x) for x in r])
        console().print(t)
        return
    widths = [max(len(str(x)) for x in col) for col in zip(columns, *rows)]
    if title:
        say(title)
    for r in [columns, *rows]:
        say("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def summary(title: str = "Timing") -> None:
    rows = [[s.title, s.outcome + (f": {s.note}" if s.note else ""), fmt_seconds(s.seconds)] for s in HISTORY]
    total = sum(s.seconds for s in HISTORY)
    rows.append(["total", "", fmt_seconds(total)])
    table(title, ["step", "result", "time"], rows)
