"""Status lines in the style of kind: one line per step, with elapsed time.

    • Creating VM ubuntu (virtualbox)
      │ ==> ubuntu: Importing base box 'ubuntu/xenial64'...
    ✓ Creating VM ubuntu  52.1s

Plain text when output is not a terminal (CI logs, pipes); rich only when it is. rich is imported
lazily so `invoke --list` stays fast.
"""
from __future__ import annotations

import codecs
import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator


def _utf8() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return encoding in ("utf8", "utf8sig")


# What a character the output's encoding lacks becomes (Windows pipes write cp1252, cp1251, ...).
ASCII = {"→": "->", "←": "<-", "×": "x", "…": "...", "✓": "ok", "✗": "FAIL", "•": "*", "│": "|", "–": "-",
         "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "≥": ">=", "≤": "<="}


def _ascii_fallback(err: UnicodeError):
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return "".join(ASCII.get(ch, "?") for ch in err.object[err.start:err.end]), err.end


def never_fail_on_encoding() -> None:
    """stdout and stderr write what their encoding lacks as ASCII (`→` as `->`) instead of raising."""
    codecs.register_error("labkit-ascii", _ascii_fallback)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="labkit-ascii")


def _as_printed(text: str) -> str:
    """The text as stdout's encoding will write it (`→` as `->` in cp1252), so widths are measured right."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "labkit-ascii").decode(encoding)
    except LookupError:  # no such codec, or the handler is not registered: print as it is
        return text


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
    _out(text)


def _out(text: str) -> None:
    """print(), except that a reader who stopped early (`| head`) ends the output, not the work: a task
    still finishes what it does (and writes the report it was asked for), like after a closed terminal."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        reader_gone()


def reader_gone() -> None:
    """Send the rest of stdout nowhere (the interpreter flushes it again on exit)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def warn(text: str) -> None:
    print(f"labkit: warning: {text}", file=sys.stderr, flush=True)


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


class StatusLine:
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


def _print(text: str, style: str | None = None) -> None:
    """A line of output; above the spinner when one is showing. `style` colours it on a terminal."""
    if getattr(_LIVE, "status", None) is not None or (style and sys.stdout.isatty()):
        console().print(text, markup=False, highlight=False, style=style)
    else:
        _out(text)


@contextmanager
def _spinner(title: str, current: "StatusLine") -> Iterator[None]:
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
def step(title: str) -> Iterator[StatusLine]:
    m = marks()
    current = StatusLine(title)
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
        note = f" ({current.note})" if current.note else ""
        _print(f"{m[current.outcome]} {title}{note}  {fmt_seconds(seconds)}", STYLES.get(current.outcome))


# Result words that get a colour on a terminal (rich leaves colour out for NO_COLOR, TERM=dumb and pipes).
STYLES = {"ok": "green", "pass": "green", "passed": "green", "warn": "yellow", "skip": "yellow", "skipped": "yellow",
          "not": "dim", "fail": "bold red", "failed": "bold red", "interrupted": "bold red"}


NO_WRAP = {"section", "time"}  # short columns: long text wraps in the others


def _style(cell: str) -> str | None:
    words = [w.strip(":") for w in cell.split()[:2]]
    return next((STYLES[w] for w in words if w in STYLES), None)


def width() -> int:
    """The terminal's columns; 80 when output goes to a pipe or a file."""
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table: rich box drawing on a terminal, aligned plain text elsewhere.

    A "fix" column is printed below the table instead, one wrapped paragraph per row, so a fix
    (a URL, a command) is always readable in full, at any width.
    """
    rows = [[_as_printed(str(x)) for x in r] for r in rows]
    columns = [_as_printed(c) for c in columns]
    fixes = []
    if "fix" in columns:
        i = columns.index("fix")
        fixes = [(r[0], r[i]) for r in rows if r[i].strip()]
        columns, rows = columns[:i] + columns[i + 1:], [r[:i] + r[i + 1:] for r in rows]
    from rich.table import Table
    from rich.text import Text

    tty = sys.stdout.isatty()
    t = Table(title=title or None, title_justify="left", title_style="", header_style="bold" if tty else "",
              **({} if tty else {"box": None, "pad_edge": False, "padding": (0, 2, 0, 0)}))
    for c in columns:
        t.add_column(c, overflow="fold", no_wrap=c in NO_WRAP)
    for r in rows:
        t.add_row(*[Text(x, style=(_style(x) or "") if tty else "") for x in r])
    if tty:
        console().print(t)
        return _print_fixes(fixes)
    # Plain text for pipes and files: the same table without lines or colour, wrapped to 80 columns.
    from rich.console import Console

    plain = Console(width=width(), color_system=None, highlight=False, emoji=False, markup=False)
    with plain.capture() as captured:
        plain.print(t)
    for line in captured.get().splitlines():
        say(line.rstrip())
    _print_fixes(fixes)


def _print_fixes(fixes: list) -> None:
    if fixes:
        say("Fixes:" if len(fixes) > 1 else "Fix:")
        for name, fix in fixes:
            say_wrapped(f"  {name}: {fix}", 4)


def say_wrapped(text: str, indent: int) -> None:
    """A long line wrapped to the terminal (80 columns in a pipe), continuation lines indented by `indent`;
    words stay whole, so a URL or a command can be copied."""
    import textwrap

    lead = len(text) - len(text.lstrip())
    for line in textwrap.wrap(text.strip(), width=width(), initial_indent=" " * lead, subsequent_indent=" " * indent,
                              break_long_words=False, break_on_hyphens=False) or [""]:
        say(line)
