"""The live region: the last lines on a terminal, redrawn by what changed.

Layer: render (rich and the stdlib). rich's `Live` rewrites its whole region on every
refresh: a slowly streamed 6 KB answer cost the terminal 1.46 MB (issue 21). Here a
redraw compares the new lines with those on the screen, line by line, and writes only
the run of cells that differs in each changed line: a piece of a paragraph costs its own
characters and a few bytes of cursor movement, and the padding of a code block's line
after the new characters stays as it is. Each redraw is framed in synchronized output
(``CSI ? 2026 h`` ... ``CSI ? 2026 l``): a terminal that knows it shows whole frames
(no flicker over SSH or on a slow terminal), one that does not ignores it.

The region starts at column 0 of the row where the cursor is, empty or holding the one
line written there before it was made (``shown``). `release` leaves its lines
where they are, as final output, and starts an empty region on the next row; `clear`
erases them and puts the cursor back where the region started.

Resizing (issue 21): the lines were drawn for the old width, and a terminal made
narrower either cuts them (xterm) or re-wraps them (tmux, VTE, kitty, iTerm2, Windows
Terminal, foot), keeping its bottom row where it was and pushing the rows on top into
its scrollback, where no cursor reaches and nothing can be erased. So a region whose
lines all still fit is redrawn in place (no line moved), and one with a line wider than
the terminal is best left as it stands: `release` with the new width goes down past the
rows its lines were re-wrapped into and starts the next region below (`MarkdownStream`
goes on with the rest of the block there). `draw` at a new width otherwise climbs to the
region's first row, counting the rows again as if narrowed lines had re-wrapped, erases
and draws afresh: exact when the region was made wider or when nothing re-wrapped; made
narrower over lines that did not fit, the climb overshoots on a terminal that cuts lines
(erasing a few earlier lines from its screen) and stops short at the top of the screen
on one that re-wraps a region taller than the screen (the rows pushed up stay in the
scrollback, a partial copy above the redrawn region).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style

if TYPE_CHECKING:
    from rich.console import Console

Line = list[Segment]
Cell = tuple[str, Style | None]

SYNC_ON = "\x1b[?2026h"
SYNC_OFF = "\x1b[?2026l"
ERASE_BELOW = "\x1b[J"
ERASE_RIGHT = "\x1b[K"
_MARK = [(ControlType.BELL,)]  # any control type: rich writes the text as is, to terminals only


def _raw(text: str) -> Segment:
    return Segment(text, None, _MARK)


def _wrap(segment: Segment) -> Control:
    """A segment in the shape `Console.control` takes: one buffered write, no re-wrapping."""
    control = Control()
    control.segment = segment
    return control


def cell_len_of(line: Line) -> int:
    """The cells a line takes on the screen."""
    return sum(cell_len(segment.text) for segment in line if not segment.control)


def _chars(line: Line) -> list[Cell]:
    return [
        (char, segment.style) for segment in line if not segment.control for char in segment.text
    ]


def _changed_run(old: list[Cell], new: list[Cell]) -> tuple[int, int]:
    """The characters of `new` to write over `old`: ``new[start:end]``.

    The run starts at the first character that differs and ends where the two lines
    end alike, in the same columns (a code block's padding after the new characters).
    """
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    same = 0
    while same < limit - start and old[-1 - same] == new[-1 - same]:
        same += 1
    while same and _width(old[: len(old) - same]) != _width(new[: len(new) - same]):
        same -= 1  # the common end sits in other columns: write it too
    return start, len(new) - same


def _width(cells: list[Cell]) -> int:
    return cell_len("".join(char for char, _ in cells))


def _segments(cells: list[Cell]) -> list[Segment]:
    """Characters back into segments, one per run of one style."""
    out: list[Segment] = []
    for char, style in cells:
        if out and out[-1].style == style:
            out[-1] = Segment(out[-1].text + char, style)
        else:
            out.append(Segment(char, style))
    return out


class LiveRegion:
    """Lines at the bottom of a terminal that change until they are released."""

    def __init__(self, console: Console, shown: Line | None = None) -> None:
        """``shown``: one line already written where the region starts, the cursor
        after it (the first words of an answer, render/lead.py); the first `draw`
        writes only what differs from it."""
        self._console = console
        self._shown: list[Line] = [shown] if shown else []
        self._width = console.width  # the width the shown lines were drawn for
        self._now = self._width  # the terminal's width as this redraw sees it
        self._row = 0  # the cursor's line in the region
        self._col: int | None = self._after(cell_len_of(shown)) if shown else 0

    def draw(self, lines: Sequence[Line], width: int | None = None) -> None:
        """Show `lines` in place of what the region shows, writing only what changed.

        `width` is the terminal's width the lines were rendered for (read once: a
        resize between rendering and drawing is then caught at the next redraw).
        """
        new = list(lines)
        out: list[Segment] = []
        self._now = self._console.width if width is None else width
        if self._shown and self._now != self._width:
            out += self._to_top()  # resized: start afresh at the new width
            out.append(_raw(ERASE_BELOW))
            self._shown = []
        old = self._shown
        for index in range(min(len(old), len(new))):
            if old[index] != new[index]:
                out += self._update(index, _chars(old[index]), _chars(new[index]))
        if len(new) > len(old):
            out += self._append(new, len(old))
        elif len(new) < len(old):
            out += self._cut(len(new))
        self._shown = new
        if out:
            self._write(out)

    @property
    def width(self) -> int:
        """The terminal's width the lines shown were drawn for."""
        return self._width

    def fits(self, width: int) -> bool:
        """Whether every line shown fits in `width` columns: no terminal re-wraps or cuts it."""
        return all(cell_len_of(line) <= width for line in self._shown)

    def keep_top(self, count: int) -> None:
        """Keep the first `count` lines as they are, for good: the region starts below.

        For lines that will not change, which the terminal may scroll out of reach.
        """
        if self._row < count:
            self._write(self._go(count, 0))
        self._shown = self._shown[count:]
        self._row -= count

    def clear(self) -> None:
        """Erase the region; the cursor goes back to where it started."""
        self._now = self._console.width
        if self._shown:
            self._write([*self._to_top(), _raw(ERASE_BELOW)])
        self._shown = []

    def release(self, width: int | None = None) -> None:
        """Keep the lines as they are, as final output; the next region starts below.

        ``width``: the terminal's width now, when it may be narrower than the lines were
        drawn for. The cursor then goes down past the rows the lines after it take once
        re-wrapped to that width (one more than they take on a terminal that cuts them:
        an empty row or two, never a line written over).
        """
        if self._shown:
            self._now = self._width if width is None else width
            if self._now < self._width:
                down = self._rows_below(self._now)
                moves = [_raw(f"\x1b[{down}B")] if down else []
            else:
                moves = self._go(len(self._shown) - 1, None)
            self._write([*moves, Segment.line()])
        self._shown = []
        self._row, self._col = 0, 0

    def _update(self, index: int, old: list[Cell], new: list[Cell]) -> list[Segment]:
        start, end = _changed_run(old, new)
        out = self._go(index, _width(new[:start]))
        out += _segments(new[start:end])
        self._col = self._after(_width(new[:end]))
        if _width(new) < _width(old) and end == len(new):
            out.append(_raw(ERASE_RIGHT))
        return out

    def _append(self, new: list[Line], start: int) -> list[Segment]:
        out: list[Segment] = []
        if start:
            out += self._go(start - 1, None)
        for index in range(start, len(new)):
            if index:
                out.append(Segment.line())
            out += new[index]
        self._row, self._col = len(new) - 1, self._after(cell_len_of(new[-1]))
        return out

    def _cut(self, keep: int) -> list[Segment]:
        """Erase the lines from `keep` on."""
        out = self._go(keep, 0) if keep else self._go(0, 0)
        out.append(_raw(ERASE_BELOW))
        return out

    def _after(self, column: int) -> int | None:
        # A full line leaves the cursor waiting to wrap, where terminals differ.
        return column if column < self._now else None

    def _go(self, row: int, column: int | None) -> list[Segment]:
        """Move the cursor to `row` of the region, and to `column` unless it is None."""
        code = ""
        if row < self._row:
            code += f"\x1b[{self._row - row}A"
        elif row > self._row:
            code += f"\x1b[{row - self._row}B"
        if column is not None and column != self._col:
            code += f"\x1b[{column + 1}G"  # not "\r": no bare control reaches the screen
        self._row = row
        if column is not None:
            self._col = column
        return [_raw(code)] if code else []

    def _rows(self, width: int) -> list[int]:
        """The rows each line takes re-wrapped to `width` columns."""
        return [max(1, -(-cell_len_of(line) // width)) for line in self._shown]

    def _cursor_row(self, rows: list[int], width: int) -> int:
        """The row of its line the cursor is on once that line is re-wrapped to `width`."""
        column = self._width if self._col is None else self._col  # None: the line is full
        return min(column // width, rows[self._row] - 1)

    def _rows_below(self, width: int) -> int:
        """Rows from the cursor down to the region's last, its lines re-wrapped to `width`."""
        rows = self._rows(max(width, 1))
        return (
            rows[self._row] - 1 - self._cursor_row(rows, max(width, 1)) + sum(rows[self._row + 1 :])
        )

    def _to_top(self) -> list[Segment]:
        """Back to column 0 of the region's first row, counting rows at today's width."""
        width = max(self._now, 1)
        up = self._row
        if width < self._width:  # narrower: each line may have wrapped into more rows
            rows = self._rows(width)
            up = sum(rows[: self._row])
            if self._row < len(rows):  # and the cursor went down its own line's rows
                up += self._cursor_row(rows, width)
        self._width = self._now
        self._row, self._col = 0, 0
        return [_raw("\x1b[G" + (f"\x1b[{up}A" if up else ""))]

    def _write(self, segments: list[Segment]) -> None:
        frame = [_raw(SYNC_ON), *segments, _raw(SYNC_OFF)]
        self._console.control(*(_wrap(segment) for segment in frame))
        self._width = self._now
