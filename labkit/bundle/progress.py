"""Progress for parallel transfers: per artifact and in total.

On a terminal: live rich bars (one per running artifact plus a total). Elsewhere (CI logs, pipes):
one line per finished artifact and a total line every PLAIN_EVERY seconds, through the ui step.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Optional

PLAIN_EVERY = 10.0


def mb(n: Optional[float]) -> str:
    return "?" if n is None else f"{n / 1e6:,.1f} MB"


class Meter:
    def __init__(self, step, total: Optional[int], count: int, live: Optional[bool] = None):
        self.step = step
        self.total = total
        self.count = count
        self.done_bytes = 0
        self.finished = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last_plain = self.started
        self._rich = None
        if live if live is not None else sys.stdout.isatty():
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            from labkit import ui

            self._rich = Progress(TextColumn("  {task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), console=ui.console(), transient=True)
            self._rich.start()
            self._overall = self._rich.add_task(f"total ({count} artifacts)", total=total)

    def artifact(self, name: str) -> "ArtifactMeter":
        return ArtifactMeter(self, name)

    def log(self, line: str) -> None:
        if self._rich is not None:
            self._rich.console.print(f"  {line}", highlight=False)
            return
        from labkit import ui

        with self._lock:  # one write per line: lines from parallel downloads never interleave
            sys.stdout.write(f"  {ui.marks()['pipe']} {line}\n")
            sys.stdout.flush()

    def _advance(self, n: int) -> None:
        with self._lock:
            self.done_bytes += n
            due = self._rich is None and time.monotonic() - self._last_plain >= PLAIN_EVERY
            if due:
                self._last_plain = time.monotonic()
        if self._rich is not None:
            self._rich.update(self._overall, advance=n)
        elif due:
            self.log(f"total: {mb(self.done_bytes)} of {mb(self.total)}, "
                     f"{self.finished} of {self.count} artifacts done")

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


class ArtifactMeter:
    def __init__(self, meter: Meter, name: str):
        self.meter = meter
        self.name = name
        self.bytes = 0
        self.total: Optional[int] = None
        self.started = time.monotonic()
        self._task = None

    def on_bytes(self, n: int, total: Optional[int] = None) -> None:
        """Callback for download(): n new bytes (0 = just announcing the total)."""
        if total is not None and total != self.total:
            self.total = total
            if self.meter._rich is not None:
                if self._task is None:
                    self._task = self.meter._rich.add_task(self.name, total=total)
                else:
                    self.meter._rich.update(self._task, total=total)
        if self._task is None and self.meter._rich is not None:
            self._task = self.meter._rich.add_task(self.name, total=total)
        if n:
            self.bytes += n
            if self._task is not None:
                self.meter._rich.update(self._task, advance=n)
            self.meter._advance(n)

    def finish(self, note: str = "") -> None:
        seconds = max(time.monotonic() - self.started, 1e-6)
        with self.meter._lock:
            self.meter.finished += 1
        if self._task is not None and self.meter._rich is not None:
            self.meter._rich.remove_task(self._task)
        rate = f", {self.bytes / seconds / 1e6:.1f} MB/s" if self.bytes else ""
        self.meter.log(f"{self.name}: {note or mb(self.bytes)}{rate}")

    def fail(self) -> None:
        if self._task is not None and self.meter._rich is not None:
            self.meter._rich.remove_task(self._task)
        self.meter.log(f"{self.name}: failed (reason at the end)")
