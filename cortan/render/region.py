"""The live region: the last lines on a terminal, redrawn by what changed.

Layer: render (rich and the stdlib). rich's `Live` rewrites its whole region on every
refresh: a slowly streamed 6 KB answer cost the terminal 1.46 MB (issue 21). Here a
redraw compares the new lines with those on the screen, line by line, and writes only
the run of cells that differs in each changed line: a piece of a paragraph costs its own
characters and a few bytes of cursor movement, and a piece that goes on where the cursor
stands costs no movement at all. Each redraw is framed in synchronized output
(``CSI ? 2026 h`` ... ``CSI ? 2026 l``): a terminal that knows it shows whole frames
(no flicker over SSH or on a slow terminal), one that does not ignores it.

A line may be wider than the terminal (a code block's line is written whole, so that a
copy gives it as one line: render/elements.py): the terminal soft-wraps it, and the
region counts the rows it takes, ceil(cells / width) with a wide character that does
not fit at a row's end moved to the next (`spot`), to move the cursor, to redraw, and to
keep rows on a resize. A line whose rows change moves the lines below it: they are drawn
again from there. A piece that would begin a row the line does not reach yet is written
from the character before, so that the terminal wraps into it (a cursor moved down past
the screen's last row would not scroll).

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
region's first row, counting the rows again as the terminal re-wraps its lines at the
new width (a soft-wrapped line joined again when it is made wider), erases and draws
afresh: exact when nothing re-wrapped, or on a terminal that re-wraps; made narrower
over lines that did not fit, the climb overshoots on a terminal that cuts lines
(erasing a few earlier lines from its screen) and stops short at the top of the screen
on one that re-wraps a region taller than the screen (the rows pushed up stay in the
scrollback, a partial copy above the redrawn region); made wider over a soft-wrapped
line, it stops short on a terminal that does not re-wrap (xterm: a row of it stays).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len, split_graphemes
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


def text_of(line: Line) -> str:
    """What a line shows, its control segments left out."""
    return "".join(text for text, _, control in line if not control)


def spot(text: str, width: int) -> tuple[int, int]:
    """Where a terminal `width` columns wide leaves the cursor after writing `text` from
    its first column: the row (0 for the first) and the column, `width` when the row is
    full and the cursor waits for the next character to wrap it.

    A line wider than the terminal is soft-wrapped by it, not broken by cortan (a code
    line copies whole: render/elements.py), so it takes more than one row: a character
    two cells wide that does not fit at the end of a row goes on the next, as rich
    measures it (`split_graphemes`).
    """
    width = max(width, 1)
    if text.isascii():  # every character one cell: no cell left empty at a row's end
        row, column = divmod(len(text), width)
        return (row - 1, width) if row and not column else (row, column)
    row = column = 0
    for _, _, size in split_graphemes(text)[0]:
        if column and column + size > width:
            row, column = row + 1, 0
        column += size
    return row, column


def chars_in_rows(text: str, rows: int, width: int) -> int:
    """How many characters of `text`, written from a terminal's first column, its first
    `rows` rows hold on a terminal `width` columns wide (as `spot` wraps them)."""
    width = max(width, 1)
    if text.isascii():
        return min(rows * width, len(text))
    row = column = 0
    for start, _, size in split_graphemes(text)[0]:
        if column and column + size > width:
            row, column = row + 1, 0
        if row >= rows:
            return start
        column += size
    return len(text)


def rows_of(line: Line, width: int) -> int:
    """The rows of a terminal `width` columns wide that `line` takes."""
    return spot(text_of(line), width)[0] + 1


def _chars(line: Line) -> list[Cell]:
    """The characters of `line` with their styles; an empty style is no style (both
    write no colour: a cell is not written again for turning from one to the other)."""
    return [
        (char, segment.style or None)
        for segment in line
        if not segment.control
        for char in segment.text
    ]


def _changed_run(old: list[Cell], new: list[Cell]) -> tuple[int, int]:
    """The characters of `new` to write over `old`: ``new[start:end]``.

    The run starts at the first character that differs and ends where the two lines
    end alike, in the same columns.
    """
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    same = 0
    while same < limit - start and old[-1 - same] == new[-1 - same]:
        same += 1
    while same and _cells(old[: len(old) - same]) != _cells(new[: len(new) - same]):
        same -= 1  # the common end sits in other columns: write it too
    return start, len(new) - same


def _cells(cells: list[Cell]) -> int:
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
    """Lines at the bottom of a terminal that change until they are released.

    A line may be wider than the terminal: the terminal soft-wraps it into rows, which
    the region counts (`spot`) to move the cursor. The cursor is kept as a place in the
    lines (a line, and how many of its characters are before it), turned into a row and
    column at whatever width a move is made for.
    """

    def __init__(self, console: Console, shown: Line | None = None) -> None:
        """``shown``: one line already written where the region starts, the cursor
        after it (the first words of an answer, render/lead.py); the first `draw`
        writes only what differs from it."""
        self._console = console
        self._width = console.width  # the width the shown lines were drawn for
        self._shown: list[Line] = []
        self._heights: list[int] = []  # the rows each shown line takes at that width
        self._at = (0, 0)  # the cursor: a line, and the characters of it before the cursor
        if shown:
            self._shown, self._heights = [shown], [rows_of(shown, self._width)]
            self._at = (0, len(text_of(shown)))

    def draw(self, lines: Sequence[Line], width: int | None = None) -> None:
        """Show `lines` in place of what the region shows, writing only what changed.

        `width` is the terminal's width the lines were rendered for (read once: a
        resize between rendering and drawing is then caught at the next redraw).
        """
        new = list(lines)
        now = self._console.width if width is None else width
        out: list[Segment] = []
        if self._shown and now != self._width:
            out += self._to_top(now)  # resized: start afresh at the new width
            out.append(_raw(ERASE_BELOW))
            self._shown, self._heights = [], []
        self._width = now
        old = len(self._shown)
        for index in range(min(old, len(new))):
            if self._shown[index] == new[index]:
                continue
            if index < old - 1 and rows_of(new[index], now) != self._heights[index]:
                out += self._redraw_from(index, new)  # the lines below it move
                break
            out += self._update(index, new[index])
        else:
            if len(new) > old:
                out += self._append(new, old)
            elif len(new) < old:
                out += self._cut(len(new))
        if out:
            self._write(out)

    @property
    def width(self) -> int:
        """The terminal's width the lines shown were drawn for."""
        return self._width

    def fits(self, width: int) -> bool:
        """Whether every line shown fits in `width` columns: no terminal re-wraps or cuts it."""
        return all(cell_len_of(line) <= width for line in self._shown)

    def keep_top(self, count: int, chars: int = 0) -> None:
        """Keep the first `count` lines as they are, for good, and the first `chars`
        characters of the line after them, whole rows of it: the region starts below.

        For lines that will not change, which the terminal may scroll out of reach; a
        line taller than the screen that only grows at its end keeps its full rows, and
        the region goes on with the rest of it, from the first column of a row.
        """
        if self._at < (count, chars) and count < len(self._shown):
            self._write(self._go(count, chars))
        elif self._at < (count, chars):  # all of them: a new row, which the terminal may
            end = len(text_of(self._shown[-1]))  # scroll in (a cursor moved down would not)
            self._write([*self._go(count - 1, end, column=False), Segment.line()])
            self._at = (count, 0)
        if chars:
            rest = self._shown[count] = _segments(_chars(self._shown[count])[chars:])
            self._heights[count] = rows_of(rest, self._width)
        self._shown, self._heights = self._shown[count:], self._heights[count:]
        line, at = self._at
        self._at = (line - count, at - chars if line == count else at)

    def clear(self) -> None:
        """Erase the region; the cursor goes back to where it started."""
        now = self._console.width
        if self._shown:
            self._write([*self._to_top(now), _raw(ERASE_BELOW)])
        self._shown, self._heights = [], []
        self._width = now

    def release(self, width: int | None = None) -> None:
        """Keep the lines as they are, as final output; the next region starts below.

        ``width``: the terminal's width now, when it may differ from the one the lines
        were drawn for. The cursor then goes down past the rows the lines after it take
        re-wrapped to that width (on a terminal that cuts them instead, past an empty
        row or two: never over a line).
        """
        if self._shown:
            now = self._width if width is None else width
            row, _ = self._place(*self._at, now)
            down = self._top(len(self._shown), now) - 1 - row
            move = f"\x1b[{down}B" if down > 0 else f"\x1b[{-down}A" if down else ""
            self._write([*([_raw(move)] if move else []), Segment.line()])
            self._width = now
        self._shown, self._heights = [], []
        self._at = (0, 0)

    def _update(self, index: int, line: Line) -> list[Segment]:
        """Write over line `index` the run of `line` that differs from it."""
        old, new = _chars(self._shown[index]), _chars(line)
        start, end = _changed_run(old, new)
        text = "".join(char for char, _ in new)
        rows = self._heights[index]
        out: list[Segment] = []
        if self._at != (index, start):  # else the characters go on from the cursor, wrapping
            while start and self._place_in(text, start)[0] >= rows:
                start -= 1  # it would begin a row the line does not reach: rewrite one before
            out += self._go(index, start)
        out += _segments(new[start:end])
        self._shown[index] = line
        self._heights[index] = rows_of(line, self._width)
        self._at = (index, end)
        if _cells(new) < _cells(old) and end == len(new):
            out += self._erase_after(index, rows > self._heights[index])
        return out

    def _erase_after(self, index: int, fewer_rows: bool) -> list[Segment]:
        """Erase what line `index` showed past its new end, where the cursor is."""
        _, column = self._place(*self._at, self._width)
        last = index == len(self._shown) - 1  # else its rows did not change (`draw`)
        if column < self._width:
            return [_raw(ERASE_BELOW if last else ERASE_RIGHT)]
        if not (last and fewer_rows):
            return []  # a full row, and nothing of the line past it
        self._at = (index + 1, 0)  # the row below the line: erased from its first column
        return [_raw(f"\x1b[B\x1b[G{ERASE_BELOW}")]

    def _redraw_from(self, index: int, new: list[Line]) -> list[Segment]:
        """Erase the region from line `index` down and draw `new` from there."""
        out = self._go(index, 0)
        out.append(_raw(ERASE_BELOW))
        del self._shown[index:], self._heights[index:]
        return out + self._lines(new, index)

    def _append(self, new: list[Line], start: int) -> list[Segment]:
        out: list[Segment] = []
        if start:
            out += self._go(start - 1, len(text_of(self._shown[start - 1])), column=False)
            out.append(Segment.line())
        return out + self._lines(new, start)

    def _lines(self, new: list[Line], start: int) -> list[Segment]:
        """Write `new` from line `start` on, the cursor where that line starts."""
        out: list[Segment] = []
        for index in range(start, len(new)):
            if index > start:
                out.append(Segment.line())
            out += new[index]
            self._shown.append(new[index])
            self._heights.append(rows_of(new[index], self._width))
        self._at = (len(new) - 1, len(text_of(new[-1])))
        return out

    def _cut(self, keep: int) -> list[Segment]:
        """Erase the lines from `keep` on."""
        out = self._go(keep, 0)
        out.append(_raw(ERASE_BELOW))
        del self._shown[keep:], self._heights[keep:]
        return out

    def _top(self, index: int, width: int) -> int:
        """The row of the region line `index` starts on, its lines wrapped at `width`."""
        if width == self._width:
            return sum(self._heights[:index])
        return sum(rows_of(line, width) for line in self._shown[:index])

    def _place(self, index: int, chars: int, width: int) -> tuple[int, int]:
        """The row in the region and the column of the character `chars` of line
        `index`; past the line's end, where the cursor stands after it (the column may
        then be `width`: the cursor waits to wrap)."""
        text = text_of(self._shown[index]) if index < len(self._shown) else ""
        row, column = self._place_in(text, chars, width)
        return self._top(index, width) + row, column

    def _place_in(self, text: str, chars: int, width: int | None = None) -> tuple[int, int]:
        width = self._width if width is None else width
        row, column = spot(text[:chars], width)
        if chars < len(text) and column + cell_len(text[chars]) > width:
            return row + 1, 0  # the character goes on the next row
        return row, column

    def _go(self, index: int, chars: int, *, column: bool = True) -> list[Segment]:
        """Move the cursor to the character `chars` of line `index` (of its row only,
        without `column`: a new line follows)."""
        row, at = self._place(*self._at, self._width)
        to_row, to_column = self._place(index, chars, self._width)
        code = ""
        if to_row < row:
            code += f"\x1b[{row - to_row}A"
        elif to_row > row:
            code += f"\x1b[{to_row - row}B"
        if column and (to_column != at or at >= self._width):
            code += (
                f"\x1b[{min(to_column, self._width - 1) + 1}G"  # no bare "\r" reaches the screen
            )
        self._at = (index, chars)
        return [_raw(code)] if code else []

    def _to_top(self, width: int) -> list[Segment]:
        """Back to column 0 of the region's first row, its lines wrapped at `width`:
        the new width after a resize, as a terminal that re-wraps lines shows them."""
        up, _ = self._place(*self._at, width)
        self._at = (0, 0)
        return [_raw("\x1b[G" + (f"\x1b[{up}A" if up else ""))]

    def _write(self, segments: list[Segment]) -> None:
        frame = [_raw(SYNC_ON), *segments, _raw(SYNC_OFF)]
        self._console.control(*(_wrap(segment) for segment in frame))
