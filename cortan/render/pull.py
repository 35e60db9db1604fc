"""How ``cortan models pull`` shows a download: a live bar on a terminal, lines elsewhere.

Layer: render. Everything goes to stderr (stdout stays empty). On a terminal rich
draws one bar per layer the server fetches (bytes, speed, time left) and prints each
stage ("pulling manifest", "verifying sha256 digest") once; elsewhere (a pipe, a log,
CI) one plain line is written per stage and per layer when it starts and when it is
complete, never one per progress step, so a log stays a few lines long.

The server's status text is outside text: it is shown sanitized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TextIO

from cortan.core.messages import PullProgress
from cortan.core.text import format_size
from cortan.render.sanitize import sanitize

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: Characters of a status line shown (a hostile server could send megabytes).
STATUS_CHARS = 200


class PullView(Protocol):
    def update(self, step: PullProgress) -> None: ...

    def close(self) -> None: ...


def make_pull_view(stream: TextIO, *, color: bool) -> PullView:
    """A bar on a terminal, plain lines elsewhere."""
    if stream.isatty():
        return BarPullView(stream, color=color)
    return PlainPullView(stream)


def _status(step: PullProgress) -> str:
    return sanitize(" ".join(step.status.split())[:STATUS_CHARS]) or "working"


def _layer(step: PullProgress) -> str:
    digest = (step.digest or "").removeprefix("sha256:")
    return sanitize(digest[:12])


class PlainPullView:
    """A line per stage, and per layer as it starts and ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last: str | None = None
        self._finished: set[str] = set()

    def update(self, step: PullProgress) -> None:
        if step.digest and step.total:
            layer = _layer(step)
            if layer in self._finished:
                return
            if step.completed is not None and step.completed >= step.total:
                self._finished.add(layer)
                self._write(f"pulled {layer}: {format_size(step.total)}")
                return
            line = f"pulling {layer}: {format_size(step.total)}"
        elif step.status == "success":
            return  # the command's own last line says it is ready
        else:
            line = _status(step)
        if line != self._last:
            self._write(line)

    def _write(self, line: str) -> None:
        self._last = line
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        pass


class BarPullView:
    """rich's live progress: one bar per layer, each stage printed once, in order.

    A stage after the layers ("verifying sha256 digest", "writing manifest") ends the
    live bars first, so it prints below them: printed above a live display it read as if
    the manifest were written before the layers came down.
    """

    def __init__(self, stream: TextIO, *, color: bool) -> None:
        from rich.console import Console

        self._console = Console(file=stream, no_color=not color, highlight=False)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last: str | None = None

    def _bars(self) -> Progress:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        if self._progress is None:
            # Sizes in binary units, as every other size cortan prints (the plain lines,
            # `models show`): rich's defaults are decimal, so one pull said 4.0 MB in its
            # bar and 3.81 MiB in its lines.
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TextColumn("{task.fields[speed]}"),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
            )
            self._tasks = {}
            self._progress.start()
        return self._progress

    def update(self, step: PullProgress) -> None:
        if step.digest:
            bars = self._bars()
            layer = _layer(step)
            task = self._tasks.get(layer)
            if task is None:  # no total (a server's odd one is dropped): indeterminate
                task = bars.add_task(f"pulling {layer}", total=step.total, speed="")
                self._tasks[layer] = task
            bars.update(task, completed=step.completed, total=step.total)  # None: as it was
            speed = next(known.speed for known in bars.tasks if known.id == task)
            bars.update(task, speed=f"{format_size(int(speed))}/s" if speed else "")
            return
        status = _status(step)
        if status != self._last and status != "success":
            self._last = status
            if not step.digest:
                self.close()
            self._console.print(status, style="dim", markup=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
