"""A model's reasoning on a terminal: dim, apart from the answer, then one line that closes it.

Layer: render. Thinking is never the answer: no view that writes stdout to a pipe
or a file shows it. ``cortan ask`` on a terminal streams it dim on stderr; the REPL
shows its last lines live under the spinner and leaves one folded line in the
scrollback ("thought for 12.3 s · ~480 tokens"), with ``/thinking`` to read it whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cortan.render.sanitize import sanitize

if TYPE_CHECKING:
    from rich.console import Console

TAIL_LINES = 3  # lines of a thought shown live under the REPL's spinner
TAIL_CHARS = 4096  # of the thought kept for its tail: a long one costs no more per piece


class Thought:
    """One answer's reasoning as it arrives: its text, its time, what closes it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._parts: list[str] = []
        self._recent = ""  # the end of the thought, for its tail
        self._started: float | None = None
        self._ended: float | None = None

    def add(self, text: str) -> None:
        if self._ended is not None:  # thinking again after a tool call: a thought of its own
            self._parts, self._recent, self._started, self._ended = [], "", None, None
        if self._started is None:
            self._started = self._clock()
        self._parts.append(text)
        self._recent = (self._recent + text)[-TAIL_CHARS:]

    @property
    def active(self) -> bool:
        """Reasoning arrived and the answer has not begun yet."""
        return self._started is not None and self._ended is None

    def tail(self, lines: int = TAIL_LINES, width: int | None = None) -> str:
        """The thought's last ``lines`` rows, as ``width`` columns wrap them.

        Reasoning often comes as one long paragraph: counted in text lines, its tail
        was the whole paragraph, drawn from its start until it filled the screen.
        """
        rows = self._recent.rstrip().splitlines()[-lines:]
        if width is not None:
            import textwrap

            wrapped = [piece for row in rows for piece in textwrap.wrap(row, width) or [""]]
            rows = wrapped[-lines:]
        return "\n".join(rows)

    def close(self) -> str | None:
        """End the thought (the answer begins); the summary line, once, if there was one."""
        if not self.active or self._started is None:
            return None
        self._ended = self._clock()
        text = "".join(self._parts)
        tokens = max(1, round(len(text) / 4))  # a rough count: the server's comes at the end
        return f"thought for {self._ended - self._started:.1f} s · ~{tokens} tokens"


class ThinkingStream:
    """Reasoning streamed dim to a console of its own (stderr), closed by its summary."""

    def __init__(self, console: Console | Callable[[], Console]) -> None:
        # A factory makes the console at the first reasoning: rich's console costs about
        # 25 ms to import, off the path to the first answer byte (issue 21).
        self._make = console if callable(console) else None
        self._made = None if callable(console) else console
        self._thought = Thought()
        self._at_line_start = True

    @property
    def active(self) -> bool:
        return self._thought.active

    def feed(self, text: str) -> None:
        from rich.text import Text

        self._thought.add(text)
        self._get_console().print(Text(sanitize(text), style="dim"), end="")
        self._at_line_start = text.endswith("\n")

    def close(self) -> None:
        if (summary := self._thought.close()) is not None:
            # Imported here only: an answer's first token, which closes the thought, must
            # not wait on the import lock while the renderer loads rich (issue 21).
            from rich.text import Text

            if not self._at_line_start:
                self._get_console().print()
            self._get_console().print(Text(summary, style="dim"))

    def _get_console(self) -> Console:
        if self._made is None:
            assert self._make is not None
            self._made = self._make()
        return self._made
