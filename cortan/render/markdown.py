"""Streaming markdown on a terminal, in time linear in the length of the answer.

Layer: render (rich and the stdlib only). This module imports `rich.markdown`, which is
heavy: import it where an answer is about to be rendered, not at start-up.

How an answer is shown while it streams in (`MarkdownStream`):

* The text is cut into markdown *blocks*. A block ends at a blank line outside a fenced
  code block when the next line starts a new top-level block (it is not indented, and
  it is not the next item of a list that is still open), or right after a closing fence
  whose opening fence started at column 0. Fences are tracked as CommonMark does
  (backticks or tildes, at least as long as the opening fence to close it). Each line
  is looked at once, when its newline arrives; nothing is scanned twice.
* A finished block is printed once, with `console.print(Markdown(block))`, preceded by
  the blank line rich puts between top-level elements, so the scrollback ends up the
  same as rendering the whole answer at once; it is never rendered again.
* Only the open block is live, in a transient `rich.live.Live` without a refresh
  thread. Redraws happen inside `feed`, at most `max_fps` times a second, and each one
  renders only the tail of the open block that fits on the screen (height - 1 lines),
  so a redraw costs the same for a 10-line and a 1,000-line code block, and the live
  view never gets taller than the screen (rich issue 3263: a `Live` taller than the
  screen duplicates lines in the scrollback). The whole block is printed when it
  closes, or at `finish`.
* On a console that is not an interactive terminal (a pipe, a file, a test), there is
  no live view: finished blocks are printed as they complete and the rest at the end.

Known differences from rendering the whole answer at once: a link reference definition
(``[1]: http://...``) only applies inside its own block, and an HTML block that holds a
blank line is split at it. Neither is common in model output.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown, UnknownElement
from rich.segment import Segment
from rich.text import Text

from cortan.render.sanitize import sanitize

__all__ = ["MarkdownStream"]

# A fence may follow list markers, quote markers and indentation ("1. ```py", "> ~~~");
# only a fence with nothing before it is top-level and ends a block when it closes.
_FENCE_OPEN = re.compile(r"((?:[ \t>]|(?:[-+*]|\d{1,9}[.)])[ \t])*)(`{3,}(?=[^`]*$)|~{3,})")
_FENCE_CLOSE = re.compile(r"[ \t>]*(`{3,}|~{3,})[ \t]*$")
_LIST_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")
_LIST_MARKER_SO_FAR = re.compile(r"[-+*]|\d{1,9}[.)]?")  # could still become a list item
_TABLE_DELIMITER = re.compile(r" {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")


@dataclass(frozen=True)
class _Fence:
    char: str
    length: int
    top_level: bool

    def closed_by(self, line: str) -> bool:
        match = _FENCE_CLOSE.match(line)
        return match is not None and match[1][0] == self.char and len(match[1]) >= self.length


class _Blocks:
    """Cuts streamed text into finished markdown blocks and the open one."""

    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines of the open block
        self._partial: list[str] = []  # pieces of the line still arriving
        self._fence: _Fence | None = None
        self._anchor: tuple[int, int] | None = None  # lines a tail must keep: fence, header
        self._after_blank = False
        self._has_text = False
        self._in_list = False

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the blocks it finished, oldest first."""
        finished: list[str] = []
        if "\n" in text:
            lines = text.split("\n")
            lines[0] = "".join([*self._partial, lines[0]])
            self._partial = [lines.pop()]
            for line in lines:
                self._add_line(line, finished)
        else:
            self._partial.append(text)
        if self._after_blank and self._has_text:
            self._check_partial(finished)
        return finished

    def open_text(self) -> str:
        """Return the open block, including the line still arriving."""
        return "\n".join([*self._lines, self._partial_line()])

    def tail(self, max_lines: int, max_chars: int) -> str:
        """Return the end of the open block: at most about `max_lines` and `max_chars`.

        The opening fence of an open code block and the header of a table are kept, so
        that the tail renders as code or as a table.
        """
        start = max(len(self._lines) - max_lines, 0)
        head: list[str] = []
        if self._anchor is not None and self._anchor[0] < start:
            head = self._lines[self._anchor[0] : min(self._anchor[1], start)]
        picked = _clip([*self._lines[start:], self._partial_line()], max_chars)
        return "\n".join([*head, *picked])

    def _partial_line(self) -> str:
        line = "".join(self._partial)
        self._partial = [line]
        return line

    def _add_line(self, line: str, finished: list[str]) -> None:
        self._lines.append(line)
        if self._fence is not None:
            self._in_fence(line, finished)
        elif not line.strip(" \t"):
            self._after_blank = True
        else:
            if self._starts_block(line):
                finished.append(self._cut(keep_last=True))
            self._after_blank = False
            self._has_text = True
            self._classify(line)

    def _in_fence(self, line: str, finished: list[str]) -> None:
        if self._fence is not None and self._fence.closed_by(line):
            top_level = self._fence.top_level
            self._fence = self._anchor = None
            if top_level:
                finished.append(self._cut(keep_last=False))

    def _check_partial(self, finished: list[str]) -> None:
        """Cut as soon as the line still arriving after a blank line shows a new block."""
        line = self._partial_line()
        if not line or (self._in_list and _LIST_MARKER_SO_FAR.fullmatch(line)):
            return  # too early to tell
        if self._starts_block(line):
            finished.append(self._cut(keep_last=False))
        else:  # the full line will not start one either: no need to look again
            self._after_blank = False

    def _starts_block(self, line: str) -> bool:
        """Whether `line`, after a blank line, starts a new top-level block."""
        if not (self._after_blank and self._has_text) or line[0] in " \t":
            return False
        return not (self._in_list and _LIST_ITEM.match(line))

    def _classify(self, line: str) -> None:
        if _LIST_ITEM.match(line):
            self._in_list = True
        index = len(self._lines) - 1
        if fence := _FENCE_OPEN.match(line):
            self._fence = _Fence(fence[2][0], len(fence[2]), top_level=not fence[1])
            self._anchor = (index, index + 1)
        elif index and "|" in line and _TABLE_DELIMITER.match(line):
            self._anchor = (index - 1, index + 1)

    def _cut(self, *, keep_last: bool) -> str:
        """End the open block; with `keep_last`, the newest line starts the next one."""
        kept = self._lines[-1:] if keep_last else []
        block = "\n".join(self._lines[: len(self._lines) - len(kept)])
        self._lines = kept
        self._anchor = None
        self._after_blank = self._has_text = self._in_list = False
        return block


def _clip(lines: list[str], max_chars: int) -> list[str]:
    """Keep the last `lines` that fit in `max_chars`, cutting the oldest one kept."""
    kept: list[str] = []
    for line in reversed(lines):
        if len(line) >= max_chars:
            kept.append(line[len(line) - max_chars :])
            break
        kept.append(line)
        max_chars -= len(line) + 1
    kept.reverse()
    return kept


class _Lines:
    """Already rendered lines, as a renderable for the live view."""

    def __init__(self, lines: list[list[Segment]]) -> None:
        self._lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        new_line = Segment.line()
        for line in self._lines:
            yield from line
            yield new_line


def _gap_after(block: Markdown) -> bool:
    """Whether rich's Markdown would put an empty line after the last element of `block`."""
    last = block.parsed[-1].type.replace("_close", "_open")
    return Markdown.elements.get(last, UnknownElement).new_line


def _open_gap(block: Markdown) -> None:
    """Make `block` render as if it followed an element that wants an empty line after it.

    rich decides on the empty line before an element from the last element it closed,
    nested ones included (a list ends with a list item), so the gap cannot be printed
    from outside: a leading token rich does not know renders as nothing but, like any
    element, asks for the empty line.
    """
    first = block.parsed[0]
    gap = first.copy(type="cortan_gap", tag="", nesting=0, level=0, children=None, content="")
    block.parsed.insert(0, gap)


class MarkdownStream:
    """Render a streamed markdown answer on `console`, block by block.

    Call `feed` with each piece as it arrives, then `finish` once at the end, or `abort`
    if the answer was interrupted or failed. Pieces are sanitised here (see
    `cortan.render.sanitize`): nothing fed in reaches the terminal unsanitised. Used as
    a context manager, the stream finishes on a normal exit and aborts on an exception.

    Args:
        console: Where to render. Live display is used only when it is an interactive
            terminal.
        code_theme: Pygments theme for code blocks.
        max_fps: Most live redraws per second.
        clock: Seconds from a monotonic clock; tests and benchmarks pass a fake one.
    """

    def __init__(
        self,
        console: Console,
        *,
        code_theme: str = "monokai",
        max_fps: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console = console
        self._code_theme = code_theme
        self._interval = 1.0 / max_fps
        self._clock = clock
        self._blocks = _Blocks()
        self._live: Live | None = None
        self._use_live = (
            console.is_terminal and console.is_interactive and not console.is_dumb_terminal
        )
        self._held_cr = False  # a "\r" that may be the first half of "\r\n"
        self._gap = False  # the next block is preceded by an empty line
        self._last_draw = -float("inf")
        self._stale = False  # text arrived since the last redraw
        self._done = False
        self._redraws = 0
        self._committed = 0

    @property
    def redraws(self) -> int:
        """How many times the live view was rendered."""
        return self._redraws

    @property
    def committed_blocks(self) -> int:
        """How many finished blocks were printed to the scrollback."""
        return self._committed

    def feed(self, text: str) -> None:
        """Add the next piece of the answer (any text: it is sanitised here)."""
        if self._done:
            raise RuntimeError("feed() after finish() or abort()")
        text = self._hold_cr(text)
        if not text:
            return
        finished = self._blocks.push(sanitize(text))
        self._stale = True
        if self._use_live:
            self._redraw(finished)
        for block in finished:
            self._print_block(block)

    def refresh(self) -> None:
        """Redraw the live view now if text arrived since the last redraw.

        `feed` redraws only when a piece arrives; call this when the stream stalls.
        """
        if self._live is not None and self._stale:
            self._draw()

    def finish(self) -> None:
        """End of the answer: print what is still open, once. Calling it again does nothing."""
        if self._done:
            return
        self._done = True
        if self._held_cr:
            self._blocks.push(sanitize("\r"))
        if self._live is not None:
            self._live.update("")
            self._live.stop()
            self._live = None
        self._print_block(self._blocks.open_text())

    def abort(self, note: str | None = None) -> None:
        """The answer was interrupted or failed: keep what arrived, then show `note`."""
        self.finish()
        if note:
            self._console.print(Text(sanitize(note), style="dim italic"))

    def __enter__(self) -> MarkdownStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    def _hold_cr(self, text: str) -> str:
        """Keep a trailing "\\r" back so that a "\\r\\n" split across pieces stays a newline."""
        if self._held_cr:
            text = "\r" + text
        self._held_cr = text.endswith("\r")
        return text[:-1] if self._held_cr else text

    def _markdown(self, text: str) -> Markdown:
        return Markdown(text, code_theme=self._code_theme, hyperlinks=False)

    def _print_block(self, text: str) -> None:
        block = self._markdown(text)
        if not block.parsed:  # blank, or only link reference definitions: rich prints nothing
            return
        gap_after = _gap_after(block)
        if self._gap:
            _open_gap(block)
        self._console.print(block)
        self._gap = gap_after
        self._committed += 1

    def _redraw(self, finished: list[str]) -> None:
        """Redraw if the frame budget allows, or before blocks are printed above the view.

        Printing while the live view is up redraws it too, so it must already show the
        new open block rather than the text about to be printed.
        """
        if self._live is None:
            self._live = Live(
                console=self._console,
                transient=True,
                auto_refresh=False,
                vertical_overflow="crop",
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        if finished or self._clock() - self._last_draw >= self._interval:
            self._draw(refresh=not finished)

    def _draw(self, *, refresh: bool = True) -> None:
        assert self._live is not None
        self._live.update(self._render_tail(), refresh=refresh)
        self._last_draw = self._clock()
        self._stale = False
        self._redraws += 1

    def _render_tail(self) -> RenderableType:
        """Render the part of the open block that fits on the screen."""
        height = max(self._console.height - 1, 1)
        source = self._blocks.tail(height, height * self._console.width)
        if not source.strip():
            return _Lines([])
        options = self._console.options.update(height=None)
        lines = self._console.render_lines(self._markdown(source), options, pad=False)
        return _Lines(lines[-height:])
