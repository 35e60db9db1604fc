"""How a batch shows how far it is: a live bar on a terminal, plain lines otherwise.

Layer: batch (a front end). Everything goes to stderr; stdout carries the output
lines only. On a terminal (and not ``--quiet``) rich draws one bar: items answered
out of the total, how many failed, tokens per second, the time left. Elsewhere (a
log file, CI) a plain line is written every ``batch.progress_interval`` seconds
while something changed. Either way the job ends with a summary (:func:`summarise`).

The total is counted in a second pass over the input while the job already runs
(a file; stdin cannot be read twice): until it is known, and for stdin, there is
no percentage and no time left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

#: How many failed items a summary names.
NAMED_FAILURES = 5


@dataclass
class Tally:
    """What a job did so far; the runner counts, the views read."""

    total: int | None = None  # items in the input, once counted
    kept: int = 0  # answered by an earlier run of the job: written from the store
    done: int = 0  # answered in this run
    failed: int = 0  # failed in this run (input errors included)
    cached: int = 0  # of ``done``, answered from the response cache
    tokens: int = 0  # completion tokens of this run's answers
    started: float = field(default_factory=time.monotonic)
    failures: list[str] = field(default_factory=list)  # the first few, as "line 7 (timeout)"
    input_failed: int = 0  # of ``failed``, items whose input could not be read

    @property
    def ended(self) -> int:
        """Items with a line in the output: kept, answered or failed."""
        return self.kept + self.done + self.failed

    def add_failure(self, where: str, kind: str) -> None:
        self.failed += 1
        if kind == "input":
            self.input_failed += 1
        if len(self.failures) < NAMED_FAILURES:
            self.failures.append(f"{where} ({kind})")

    def rate(self, now: float) -> float:
        """Items of this run per second so far."""
        elapsed = now - self.started
        return (self.done + self.failed) / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        """Seconds left at this run's pace, when the total is known."""
        rate = self.rate(now)
        if self.total is None or rate <= 0:
            return None
        return max(0, self.total - self.ended) / rate


class ProgressView(Protocol):
    """Shows a job's tally while it runs; the runner calls these in order."""

    def start(self, tally: Tally) -> None: ...

    def update(self) -> None:
        """An item ended, or the total became known."""
        ...

    def tick(self) -> None:
        """Called every ``progress_interval`` seconds."""
        ...

    def log(self, text: str) -> None:
        """A line above the progress (a failed item, a notice)."""
        ...

    def stop(self) -> None: ...


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def describe(tally: Tally, now: float) -> str:
    """One line of progress: ``120/1000 items · 2 failed · 35 tok/s · 4m 10s left``."""
    total = "?" if tally.total is None else str(tally.total)
    parts = [f"{tally.ended}/{total} items"]
    if tally.failed:
        parts.append(f"{tally.failed} failed")
    elapsed = now - tally.started
    if elapsed > 0 and tally.tokens:
        parts.append(f"{tally.tokens / elapsed:.0f} tok/s")
    if (eta := tally.eta(now)) is not None:
        parts.append(f"{format_duration(eta)} left")
    return " · ".join(parts)


class PlainProgress:
    """A line every tick while something changed: for logs and pipes."""

    def __init__(self, file: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._file = file
        self._clock = clock
        self._tally = Tally()
        self._shown: tuple[int, int | None] | None = None

    def start(self, tally: Tally) -> None:
        self._tally = tally

    def update(self) -> None:
        pass

    def tick(self) -> None:
        state = (self._tally.ended, self._tally.total)
        if state == self._shown:
            return
        self._shown = state
        self.log(f"batch: {describe(self._tally, self._clock())}")

    def log(self, text: str) -> None:
        self._file.write(text + "\n")
        self._file.flush()

    def stop(self) -> None:
        pass


class QuietProgress(PlainProgress):
    """``--quiet``: failures and notices still show, progress lines do not."""

    def tick(self) -> None:
        pass


class RichProgress:
    """rich's live bar on the stderr terminal."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._tally = Tally()

    def start(self, tally: Tally) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._tally = tally
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._task = self._progress.add_task("batch", total=tally.total, failed="", speed="")
        self._progress.start()

    def update(self) -> None:
        if self._progress is None or self._task is None:
            return
        tally = self._tally
        elapsed = time.monotonic() - tally.started
        speed = f"{tally.tokens / elapsed:.0f} tok/s" if elapsed > 0 and tally.tokens else ""
        failed = f"{tally.failed} failed" if tally.failed else ""
        self._progress.update(
            self._task, total=tally.total, completed=tally.ended, failed=failed, speed=speed
        )

    def tick(self) -> None:
        self.update()

    def log(self, text: str) -> None:
        from rich.text import Text

        self._console.print(Text(text, style="dim"))

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _how_to_go_on(tally: Tally) -> str:
    """After failures: run again, but an item whose input could not be read fails the
    same way until the input is fixed (a rerun reads it afresh and asks only those)."""
    if tally.input_failed == tally.failed:
        return "fix the input's failed items, then run the same command again"
    if tally.input_failed:
        return (
            "run the same command again to ask the failed items again "
            "(fix the input's failed items first)"
        )
    return "run the same command again to ask the failed items again"


def summarise(tally: Tally, now: float, *, stopped: bool, output: str | None) -> list[str]:
    """The lines that end a job: what it did, and which items failed."""
    counts = [f"{tally.done:,} answered"]
    if tally.cached:
        counts[0] += f" ({tally.cached:,} from the cache)"
    if tally.failed:
        counts.append(f"{tally.failed:,} failed")
    if tally.kept:
        counts.append(f"{tally.kept:,} kept from an earlier run")
    if tally.total is not None and tally.total > tally.ended:
        counts.append(f"{tally.total - tally.ended:,} not run")
    head = "batch stopped" if stopped else "batch done"
    line = f"{head}: {', '.join(counts)} in {format_duration(now - tally.started)}"
    if tally.tokens:
        line += f" · {tally.tokens:,} tokens"
    if output:
        line += f" · output in {output}"
    lines = [line]
    if tally.failures:
        more = tally.failed - len(tally.failures)
        named = ", ".join(tally.failures) + (f" and {more} more" if more > 0 else "")
        lines.append(f"failed: {named}; their output lines say why")
        if not stopped:
            lines.append(_how_to_go_on(tally))
    return lines
