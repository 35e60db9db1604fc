"""Streaming markdown on a terminal, in time linear in the length of the answer.

Layer: render (rich and the stdlib). `rich.markdown` is heavy: import this module when an
answer is about to be shown, not at start-up.

The answer is cut into markdown blocks as it arrives, each line examined once: a block ends
at a blank line outside a code fence when the next line starts a new top-level block (not
indented, nor the next item of an open list), or at the closing fence of a top-level code
block (fences as in CommonMark). A finished block is printed once, with rich's `Markdown`,
so the scrollback ends up as rich renders the whole answer at once. Only the open block is
live, in a `LiveRegion` (render/region.py) redrawn from `feed` (no thread) at most
`max_fps` times a second and cut to the tail that fits on the screen: a redraw costs the
same however long the block, and a live view taller than the screen duplicates lines
(rich issue 3263). A code block is the exception: its lines do not change once complete,
so as it grows past the screen its top rows are kept for good, scrolled out like printed
output, and it is rendered from the code lines after them (`_Kept`, `_scroll`). The
region writes only the cells that changed, and a finished block that was live whole is
committed where it stands: nothing on the screen is drawn twice. A console that is not
an interactive terminal gets no live view, only the finished blocks.

Made narrower than a line of the open block mid-answer (issue 21), a terminal re-wraps
or cuts its lines, and one that re-wraps pushes its top rows into the scrollback, beyond
reach. The block as drawn is then kept where it stands, and the rest of it goes on
below: rendered at the width it started at, from the first character that differs from
what was drawn (a line still arriving goes on, on the next row, from where it was cut),
and cut into rows of the terminal's width, as the terminal cut the rows above. No line
of the answer is drawn twice and nothing above is erased. The next blocks are rendered
at the new width. A bullet list is cut into its items, each printed as the next begins,
and so is a numbered list once it is taller than the screen (`_Blocks`), so a tall list
has no tail to redraw; a table taller than the screen is printed row by row, each row
as it ends, under the columns of the rows printed before (`_Table`). A paragraph taller
than the screen, of which only the tail is live, cannot be kept (its top was never
drawn): it is redrawn at the new width, and the rows a re-wrapping terminal pushed up
stay in its scrollback (region.py).

Known differences from one rendering of the whole answer: a link reference definition
applies only inside its own block, an HTML block holding a blank line is cut there, an
image inside a bullet list is drawn above its own item (rich draws every image of a
list above the whole list), and a numbered list printed item by item (taller than the
screen, or narrowed mid-list) before its ninth item keeps the narrower numbers of its
first items when its tenth widens the rest (rich widens them all from the ninth), and
a table printed row by row widens its columns from a wider row on (the rows above keep
theirs), where rich widens them all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.cells import cell_len
from rich.console import Console
from rich.markdown import ListElement, Markdown, MarkdownElement, TableElement, UnknownElement
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from cortan.render.region import LiveRegion, cell_len_of
from cortan.render.sanitize import sanitize

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from rich.console import ConsoleOptions, RenderResult

# A fence may follow list markers, quote markers and indentation ("1. ```py", "> ~~~");
# only a fence with nothing before it is top-level and ends a block when it closes.
_FENCE_OPEN = re.compile(r"((?:[ \t>]|(?:[-+*]|\d{1,9}[.)])[ \t])*)(`{3,}(?=[^`]*$)|~{3,})")
_FENCE_CLOSE = re.compile(r"([ \t>]*)(`{3,}|~{3,})[ \t]*$")
_LIST_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")
_LIST_MARKER_SO_FAR = re.compile(r"[-+*]|\d{1,9}[.)]?")  # could still become a list item
# A top-level list item: its indent, number and marker. A thematic break ("- - -",
# "* * *") is not one, whatever it looks like.
_ITEM = re.compile(r"( {0,3})(\d{1,9})?([-+*.)])(?=[ \t])")
_NUMBER_SO_FAR = re.compile(r"( {0,3})(\d{0,9})([.)]?)")  # could still become a numbered item
_THEMATIC_BREAK = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}$")
_TABLE_DELIMITER = re.compile(r" {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")


class _Fence(NamedTuple):
    char: str
    length: int
    prefix: str  # what comes before the opening fence; "" for a top-level fence

    def closed_by(self, line: str) -> bool:
        """Same character, at least as long, in the same quote, at most 3 columns further."""
        match = _FENCE_CLOSE.match(line)
        return (
            match is not None
            and len(match[1]) <= len(self.prefix) + 3
            and match[1].count(">") == self.prefix.count(">")
            and match[2][0] == self.char
            and len(match[2]) >= self.length
        )


class _Marker(NamedTuple):
    """How the open block's list marks its items: what starts the next one."""

    indent: str
    symbol: str  # "-", "+" or "*" for a bullet list; "." or ")" after a number
    width: int  # of the open item's marker with its indent: its lines go on past it

    @property
    def numbered(self) -> bool:
        return self.symbol in ".)"

    @classmethod
    def of(cls, line: str) -> _Marker | None:
        item = _ITEM.match(line)
        if item is None or bool(item[2]) != (item[3] in ".)") or _THEMATIC_BREAK.match(line):
            return None
        return cls(item[1], item[3], item.end())

    def may_start(self, line: str) -> bool:
        """Whether `line`, still arriving, may yet start the next item (so far a
        marker, or spaces before one)."""
        if not self.numbered:
            bullet = self.indent + self.symbol
            return len(line) <= len(bullet) and bullet.startswith(line)
        so_far = _NUMBER_SO_FAR.fullmatch(line)
        if so_far is None or (so_far[3] and so_far[3] != self.symbol):
            return False
        return so_far[1] == self.indent if so_far[2] else len(line) <= len(self.indent)


class _Numbering(NamedTuple):
    """Where the items of a numbered list printed apart go on from (`_Blocks`)."""

    start: int  # the number of the block's first item
    least_last: int  # the last number of the items printed before, as rich counts it


class _TablePart(NamedTuple):
    """Which part of a table printed row by row a block is (`_Blocks`): every part holds
    the table's head, drawn with the first part only; the last draws the bottom edge."""

    head: bool
    foot: bool


class _Finished(NamedTuple):
    """A finished block, and whether it goes on the list of the block before it: the
    items of a list are cut apart as each ends (`_Blocks`), and printed with no gap
    between them, as one list is; so are the rows of a tall table."""

    text: str
    joined: bool = False
    numbering: _Numbering | None = None
    table: _TablePart | None = None


class _Blocks:
    """Cuts streamed text into finished markdown blocks and the open one.

    A top-level bullet list is cut before each of its items after the first: an item of
    a bullet list renders the same whatever follows it (rich draws tight and loose lists
    alike), so each is printed for good as it ends, and a list taller than the screen
    never needs a tail redrawn (a terminal narrowed mid-list would leave that tail's rows
    in its scrollback). A numbered list is cut so only once `cut_items` is called: rich
    makes every number as wide as the last one, which a list printed item by item cannot
    know; each item is numbered on from the ones printed before (`_Numbering`), and no
    narrower than they were. A table the block starts with is cut so too, before each
    row (`_TablePart`): rich sizes its columns from every row, so the rows printed apart
    keep the columns of the first part (`_Table`).
    """

    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines of the open block
        self._partial: list[str] = []  # pieces of the line still arriving
        self._fence: _Fence | None = None
        self._anchor: tuple[int, int] | None = None  # lines a tail must keep: fence, header
        self._after_blank = False
        self._has_text = False
        self._in_list = False
        self._marker: _Marker | None = None  # the open block starts a list: its marker
        self._items = 0  # the items of that list in the open block
        self._cutting = False  # a numbered list taller than the screen: cut item by item
        self._number = 0  # the number of the open block's first item, if numbered
        self._least_last = 0  # rich's last number of the items before, if joined
        self._table_rows = False  # a table taller than the screen: cut row by row
        self._table_goes_on = False  # the open block's table head was printed before
        self.joined = False  # the open block goes on the list of the block before it

    def push(self, text: str) -> list[_Finished]:
        """Add streamed text; return the blocks it finished, oldest first."""
        finished: list[_Finished] = []
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
        if self._item_ahead():
            # The next item is certain before its line ends: the item before is printed
            # now, and the next item's first words are never drawn as part of it (a
            # terminal narrowed meanwhile would keep them there, above the next item).
            finished.append(self._cut(keep_last=False, next_item=True))
        return finished

    def cut_items(self) -> None:
        """A numbered list the open block starts is cut before each of its next items
        from now on, as a bullet list always is: it is taller than the screen, or drawn
        for good by a narrowing (a tenth item would widen every number drawn)."""
        if self._marker is not None and self._marker.numbered:
            self._cutting = True
        if self._anchor == (0, 2) and self._fence is None:  # the block starts a table
            self._table_rows = True

    def take_rows(self) -> _Finished | None:
        """The complete rows of the table the open block starts, if it is cut row by row:
        printed at once when it is found taller than the screen, not after its next row
        (a terminal narrowed meanwhile would keep the rows of its tail twice)."""
        if not self._table_rows or len(self._lines) <= 2:
            return None
        return self._cut_rows()

    @property
    def table_part(self) -> _TablePart | None:
        """The open block's part of a table printed row by row, if it goes on one."""
        return _TablePart(head=False, foot=True) if self._table_goes_on else None

    @property
    def numbering(self) -> _Numbering | None:
        """How the open block numbers its items, if it goes on a numbered list."""
        numbered = self.joined and self._marker is not None and self._marker.numbered
        return _Numbering(self._number, self._least_last) if numbered else None

    @property
    def in_code(self) -> bool:
        """Whether the open block ends in a top-level code fence still open, whose lines
        do not change once they are complete."""
        return self._fence is not None and not self._fence.prefix

    def code(self, skip: int) -> tuple[str, int, int]:
        """The open code block's fence line and its code lines from `skip` on; the
        fence's line in the block, and how many code lines are complete."""
        assert self._anchor is not None
        fence = self._anchor[0]
        code = self._lines[fence + 1 :]
        text = "\n".join([self._lines[fence], *code[skip:], self._partial_line()])
        return text, fence, len(code)

    def open_text(self) -> str:
        """Return the open block, including the line still arriving."""
        return "\n".join([*self._lines, self._partial_line()])

    def shown_text(self) -> str:
        """The open block as the live view draws it (see `_shown_partial_line`)."""
        return "\n".join([*self._lines, self._shown_partial_line()])

    def tail(self, max_lines: int, max_chars: int) -> str:
        """Return the last `max_lines` and `max_chars` of the open block, plus the lines
        that make it render as code or as a table (an open fence, a table header)."""
        start = max(len(self._lines) - max_lines, 0)
        head: list[str] = []
        if self._anchor is not None and self._anchor[0] < start:
            head = self._lines[self._anchor[0] : min(self._anchor[1], start)]
        tail = "\n".join([*self._lines[start:], self._shown_partial_line()])
        return "\n".join([*head, tail[-max_chars:]])

    def _shown_partial_line(self) -> str:
        """The line still arriving, less the info string of a fence it opens.

        "```py" may yet become "```python": drawn as it is, each fragment would be
        looked up as a language, and pygments answers a name it does not know by
        scanning every installed package's entry points for plugins.
        """
        line = self._partial_line()
        if self._fence is None and (fence := _FENCE_OPEN.match(line)):
            return line[: fence.end()]
        if self._item_ahead() is None:
            return ""  # a marker that may start the next item: not drawn in this one
        return line

    def _partial_line(self) -> str:
        line = "".join(self._partial)
        self._partial = [line]
        return line

    def _add_line(self, line: str, finished: list[_Finished]) -> None:
        self._lines.append(line)
        if self._fence is not None:
            if self._fence.closed_by(line):
                top_level = not self._fence.prefix
                self._fence = self._anchor = None
                if top_level:
                    finished.append(self._cut(keep_last=False))
        elif not line.strip(" \t"):
            self._after_blank = True
        else:
            if self._starts_block(line):
                finished.append(self._cut(keep_last=True))
            else:
                self._follow_list(line, finished)
            self._after_blank = False
            self._has_text = True
            self._classify(line)
            if self._table_rows and len(self._lines) > 2:  # a row, past head and delimiter
                if "|" in line:
                    finished.append(self._cut_rows())
                else:  # maybe not a row: the rest of the table goes as one part
                    self._table_rows = False

    def _follow_list(self, line: str, finished: list[_Finished]) -> None:
        """Note where the list the open block starts goes: its first item, the next
        (cut there if it `_cuts`), or, out of its item, an end to cutting it."""
        if not self._has_text:
            self._marker = _Marker.of(line)
            self._items = 1
            if self._marker is not None and self._marker.numbered and not self.joined:
                self._number = int(line[len(self._marker.indent) : self._marker.width - 1])
        elif self._next_item(line):
            if self._cuts:
                finished.append(self._cut(keep_last=True, next_item=True))
                self._follow_list(line, finished)
            else:
                self._items += 1
                self._marker = _Marker.of(line)
        elif self._marker is not None and not line.startswith(self._continuation):
            # Not inside the item: the list may have ended (a break, a heading, another
            # marker starting another list); cut no more in this block.
            self._marker = None

    def _check_partial(self, finished: list[_Finished]) -> None:
        """Cut as soon as the line still arriving after a blank line shows a new block."""
        line = self._partial_line()
        if not line or (self._in_list and _LIST_MARKER_SO_FAR.fullmatch(line)):
            return  # too early to tell
        if self._starts_block(line):
            finished.append(self._cut(keep_last=False))
        else:  # the full line will not start one either: no need to look again
            self._after_blank = False

    @property
    def _cuts(self) -> bool:
        """Whether the open block's list is cut before its next item."""
        return self._marker is not None and (not self._marker.numbered or self._cutting)

    def _item_ahead(self) -> bool | None:
        """Whether the line still arriving starts the next item of the open list, to be
        cut there: None while it may (a marker and spaces so far, or "- -", which may yet
        be a thematic break)."""
        line, marker = self._partial_line(), self._marker
        if marker is None or not self._cuts or not self._has_text or not line:
            return False
        if marker.may_start(line):
            return None
        if not self._next_item(line):
            return False
        return None if not line.strip(marker.symbol + " \t") else True

    @property
    def _continuation(self) -> tuple[str, str]:
        """How a line inside the open item starts: indented past its marker."""
        return (" " * ((self._marker.width if self._marker else 0) + 1), "\t")

    def _next_item(self, line: str) -> bool:
        """Whether `line` starts the next item of the list the open block started, with
        the same marker at the same indent (another marker starts another list)."""
        marker, other = self._marker, _Marker.of(line)
        return (
            marker is not None
            and other is not None
            and other.indent == marker.indent
            and other.symbol == marker.symbol
        )

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
            self._fence = _Fence(fence[2][0], len(fence[2]), prefix=fence[1])
            self._anchor = (index, index + 1)
        elif index and "|" in line and _TABLE_DELIMITER.match(line):
            self._anchor = (index - 1, index + 1)

    def _cut_rows(self) -> _Finished:
        """Print the table's rows so far; the next rows go on under its head, which the
        open block keeps so that they render as its rows (it is not drawn again)."""
        head = not self._table_goes_on
        block = _Finished("\n".join(self._lines), table=_TablePart(head=head, foot=False))
        self._lines = self._lines[:2]
        self._table_goes_on = True
        return block

    def _cut(self, *, keep_last: bool, next_item: bool = False) -> _Finished:
        """End the open block; with `keep_last`, the newest line starts the next one,
        which with `next_item` is the next item of its list."""
        kept = self._lines[-1:] if keep_last else []
        text = "\n".join(self._lines[: len(self._lines) - len(kept)])
        block = _Finished(text, self.joined, self.numbering, self.table_part)
        self._table_rows = self._table_goes_on = False
        if next_item:
            self._least_last = max(self._least_last, self._number + self._items)
            self._number += self._items
        else:
            self._least_last = 0
        self._lines = kept
        self._anchor = None
        if not next_item:  # the next item's line, arriving, is numbered by the same list
            self._marker = None
        self._after_blank = self._has_text = self._in_list = False
        self._cutting = next_item and self._cutting
        self.joined = next_item
        return block


class _Kept(NamedTuple):
    """What of the open block is on the terminal for good: left by a narrowing, or the
    top of a code block taller than the screen, scrolled out of reach.

    The block is rendered at `width` until it ends, and of that rendering `lines` are on
    the terminal (with what the terminal did to them). From `source` on, a code block
    is rendered from its fence (line `fence` of the block) and its code lines from
    `source` on, less the padding row on top: the lines before are on the terminal.
    """

    width: int
    lines: list[list[Segment]]
    source: int = 0
    fence: int = 0


def _trimmed(line: list[Segment]) -> list[Segment]:
    """`line` less the spaces rich pads it with to the width, where they show nothing.

    Padded, every row fills the screen: made narrower, a re-wrapping terminal turns each
    into a row and a blank one, and a narrowing keeps rows that would have fit. Spaces
    with a background or a line through them (a code block's) are kept.
    """
    while line and not line[-1].control and _shows_nothing(line[-1].style):
        text = line[-1].text.rstrip(" ")
        if text:
            line[-1] = Segment(text, line[-1].style)
            break
        line.pop()
    return line


def _shows_nothing(style: Style | None) -> bool:
    """Whether a space in `style` looks like no character at all."""
    return style is None or not (
        style.bgcolor or style.reverse or style.underline or style.strike or style.overline
    )


def _text(line: list[Segment]) -> str:
    return "".join(text for text, _, control in line if not control)


def _rows_after(lines: list[list[Segment]], kept: _Kept, width: int) -> list[list[Segment]]:
    """What `lines` hold past what `kept` shows, cut into rows of `width` cells."""
    index, start = _divergence(lines, kept.lines)
    rows: list[list[Segment]] = []
    for line in lines[index:]:
        length = cell_len_of(line)
        if start:  # the line that was still arriving goes on from where it was cut
            if length <= start:
                start = 0
                continue
            line = list(Segment.divide(line, [start, length]))[-1]
            length, start = length - start, 0
        if length <= width:
            rows.append(line)
            continue
        pieces = list(Segment.divide(line, [*range(width, length, width), length]))
        while len(pieces) > 1 and not _text(pieces[-1]).strip():
            pieces.pop()  # only the padding of a code block's line: no row of its own
        rows += pieces
    return rows


def _divergence(lines: list[list[Segment]], kept: list[list[Segment]]) -> tuple[int, int]:
    """The line and the cell of it where the text of `lines` stops being that of `kept`.

    Colours aside: a highlighter may colour a line again once it is longer.
    """
    index = 0
    while index < min(len(lines), len(kept)) and _text(lines[index]) == _text(kept[index]):
        index += 1
    if index == min(len(lines), len(kept)):
        return index, 0
    new, old = _text(lines[index]), _text(kept[index])
    same = 0
    while same < min(len(new), len(old)) and new[same] == old[same]:
        same += 1
    return index, cell_len(new[:same])


class _NumberedList(ListElement):
    """rich's list; numbered, at least as wide as the items of it printed before.

    rich makes every number as wide as the last one, counted one past it (`number +
    len(items)`: the ninth item widens them all); the items of a tall list are printed
    apart (`_Blocks`), each knowing only the numbers before it, so each goes on as wide
    as those or as its own number, whichever is wider.
    """

    least_last = 0

    @classmethod
    def create(cls, markdown: Markdown, token: Token) -> ListElement:
        element = super().create(markdown, token)
        if token.level == 0 and isinstance(markdown, _Markdown) and isinstance(element, cls):
            element.least_last = markdown.least_last
        return element

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.least_last:
            yield from super().__rich_console__(console, options)
            return
        number = 1 if self.list_start is None else self.list_start
        last_number = max(number + len(self.items) - 1, self.least_last)
        for index, item in enumerate(self.items):
            yield from item.render_number(console, options, number + index, last_number)


@dataclass
class _Columns:
    """The columns of a table printed row by row: the width each column's text wants in
    the rows so far, padding included (rich's measure, before it narrows columns to
    the screen), and the rows above the first row (top edge, head, rule), which the
    later parts leave out."""

    wanted: list[int] = field(default_factory=list)
    head_rows: dict[int, int] = field(default_factory=dict)  # by the width drawn at


class _TableCut(NamedTuple):
    """How a part of a table printed row by row is drawn: with its head or not, with its
    bottom edge or not, in the table's columns."""

    head: bool
    foot: bool
    columns: _Columns


class _Table(TableElement):
    """rich's table; a part of one printed row by row (`_Blocks`) is laid out from the
    widths the rows of every part so far want, and draws the head and the bottom edge
    only where they belong.

    rich sizes the columns from every row: rows printed apart, sized each from their
    own text, would not line up. The layout is rich's own (its private `_measure_column`
    and `_collapse_widths`; the tests that compare a tall table streamed with one
    rendering of it guard them): a later part widens a column its text needs, as rich
    would have (the rows above stay as they were), and columns too wide for the screen
    are narrowed the widest first. A word longer than its column folds onto the cell's
    next row: rich's default, an ellipsis, would drop the rest of it ("294" drawn "2…").
    """

    cut: _TableCut | None = None

    @classmethod
    def create(cls, markdown: Markdown, token: Token) -> MarkdownElement:
        element = super().create(markdown, token)
        if token.level == 0 and isinstance(markdown, _Markdown) and isinstance(element, cls):
            element.cut, markdown.table = markdown.table, None  # the block's first table
        return element

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = next(iter(super().__rich_console__(console, options)))
        if self.cut is None or not isinstance(table, Table):
            yield table
            return
        cut, columns = self.cut, self.cut.columns
        room = options.update_width(options.max_width - table._extra_width)
        wanted = [table._measure_column(console, room, column).maximum for column in table.columns]
        columns.wanted = list(map(max, columns.wanted or wanted, wanted))  # never narrower
        widths = _fitted(table, columns.wanted, room.max_width)
        for index, (column, width) in enumerate(zip(table.columns, widths, strict=True)):
            column.width = max(width - table._get_padding_width(index), 1)
            column.overflow = "fold"
        lines = console.render_lines(table, options, pad=False)
        if options.max_width not in columns.head_rows:
            columns.head_rows[options.max_width] = _head_rows(table, console, options)
        skip = 0 if cut.head else columns.head_rows[options.max_width]
        for line in lines[skip : len(lines) if cut.foot else -1]:
            yield from line
            yield Segment.line()


def _fitted(table: Table, wanted: list[int], room: int) -> list[int]:
    """The columns' widths for `wanted` in `room` cells, as rich lays out a table (its
    `_calculate_column_widths`, from the widths wanted so far rather than this part's):
    narrowed the widest first, then all by the same share if that is not enough."""
    widths = list(wanted)
    if sum(widths) > room:
        widths = table._collapse_widths(widths, [True] * len(widths), room)
        if sum(widths) > room:
            from rich._ratio import ratio_reduce

            widths = ratio_reduce(sum(widths) - room, [1] * len(widths), widths, widths)
    return widths


def _head_rows(table: Table, console: Console, options: ConsoleOptions) -> int:
    """How many rows `table` draws above its first row: its top edge, head, rule."""
    from copy import copy

    head = copy(table)
    head.columns = [copy(column) for column in table.columns]
    for column in head.columns:
        column._cells = []
    head.rows = []
    return len(console.render_lines(head, options, pad=False)) - 1


class _Markdown(Markdown):
    """rich's `Markdown`, parsed by one parser shared by every block and redraw.

    rich builds a new `MarkdownIt` for each instance, which cost about a fifth of the
    stream's CPU at 2k tokens (two instances per finished block: its redraw and its
    print). The attributes are rich's own, set as its `__init__` sets them; the tests
    that compare the stream with one rendering of the whole answer guard the copy.
    """

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements,
        "ordered_list_open": _NumberedList,
        "table_open": _Table,
    }
    _parser: MarkdownIt | None = None
    joined = False  # the next items of a list printed before: no empty row on top
    least_last = 0  # see `_NumberedList`
    table: _TableCut | None = None  # see `_Table`

    def __init__(self, markup: str, *, code_theme: str, hyperlinks: bool) -> None:
        parser = _Markdown._parser
        if parser is None:
            from markdown_it import MarkdownIt

            parser = _Markdown._parser = MarkdownIt().enable("strikethrough").enable("table")
        self.markup = markup
        self.parsed = parser.parse(markup)
        self.code_theme = code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = hyperlinks
        self.inline_code_lexer = None
        self.inline_code_theme = code_theme

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """rich's rendering; joined, less the empty row rich puts above a list (the rows
        of the list's first items, printed before, are above it)."""
        rendered = iter(super().__rich_console__(console, options))
        if self.joined:
            first = next(rendered, None)
            if first is not None and first != Segment.line():
                yield first
        yield from rendered

    def go_on(
        self, joined: bool, numbering: _Numbering | None, table: _TableCut | None = None
    ) -> None:
        """Render as the next items of the list printed before, numbered on from it, or
        as a part of a table printed row by row (no empty row on top of its rows)."""
        self.joined = joined or (table is not None and not table.head)
        self.table = table
        if numbering is None or not self.parsed or self.parsed[0].type != "ordered_list_open":
            return
        self.parsed[0].attrs["start"] = numbering.start  # "1." each: numbered on all the same
        self.least_last = numbering.least_last


def _open_gap(block: Markdown) -> None:
    """Render `block` as if it followed an element that wants an empty line after it.

    rich decides from the last element closed, nested ones included, so the gap cannot be
    printed from outside; a token rich does not know renders nothing but asks for it.
    """
    first = block.parsed[0]
    gap = first.copy(type="cortan_gap", tag="", nesting=0, level=0, children=None, content="")
    block.parsed.insert(0, gap)


class MarkdownStream:
    """Render a streamed markdown answer on `console`, block by block.

    Call `feed` with each piece as it arrives, then `finish` once at the end, or `abort`
    if the answer was interrupted or failed. Pieces are sanitised here (see
    `cortan.render.sanitize`): nothing fed in reaches the terminal unsanitised.

    Args:
        console: Where to render; with a live view only if it is an interactive terminal.
        code_theme: Pygments theme for code blocks.
        hyperlinks: OSC 8 links, which hide their target; off, the target follows the text.
        max_fps: Most live redraws per second.
        clock: Seconds from a monotonic clock; tests and benchmarks pass a fake one.
        shown: The start of the answer, already written plain from the cursor's first
            column (render/lead.py): the live view starts from it instead of writing it
            again. It is still to be fed, like the rest.

    Attributes:
        redraws: How many times the live view was rendered.
        committed_blocks: How many finished blocks were printed to the scrollback.
    """

    def __init__(
        self,
        console: Console,
        *,
        code_theme: str = "monokai",
        hyperlinks: bool = False,
        max_fps: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        shown: str = "",
    ) -> None:
        self._console = console
        self._markdown = partial(_Markdown, code_theme=code_theme, hyperlinks=hyperlinks)
        self._interval = 1.0 / max_fps
        self._clock = clock
        self._blocks = _Blocks()
        self._live: LiveRegion | None = None
        if console.is_terminal and console.is_interactive and not console.is_dumb_terminal:
            self._live = LiveRegion(console, [Segment(shown)] if shown else None)
        elif shown:  # not live after all: the first block, printed, goes over it
            console.file.write("\r")
        self._live_whole = True  # the region shows the open block from its first line
        self._kept: _Kept | None = None  # what of the open block is on the terminal for good
        self._drawn: list[list[Segment]] | None = None  # the open block as drawn, when whole
        self._rows: list[list[Segment]] = []  # the rows the live region shows
        self._scrolls = True  # the open block, if code, may keep its top rows (_scroll)
        self._held_cr = False  # a "\r" that may be the first half of "\r\n"
        self._gap = False  # the next block is preceded by an empty line
        self._columns = _Columns()  # of a table printed row by row
        self._next_draw = -float("inf")
        self._stale = False  # text arrived since the last redraw
        self._done = False
        self.redraws = 0
        self.committed_blocks = 0

    def feed(self, text: str) -> None:
        """Add the next piece of the answer (any text: it is sanitised here)."""
        if self._done:
            raise RuntimeError("feed() after finish() or abort()")
        text = self._hold_cr(text)
        if not text:
            return
        finished = self._blocks.push(sanitize(text))
        self._stale = True
        for block in finished:
            self._print_block(*block)
        if self._live is not None and (finished or self._clock() >= self._next_draw):
            self._draw()

    def refresh(self) -> None:
        """Redraw now if text arrived since the last redraw (for when the stream stalls)."""
        if self._live is not None and self._stale:
            self._draw()

    def finish(self) -> None:
        """End of the answer: print what is still open, once. Calling it again does nothing."""
        if self._done:
            return
        self._done = True
        if self._held_cr:
            self._blocks.push(sanitize("\r"))
        blocks = self._blocks
        self._print_block(blocks.open_text(), blocks.joined, blocks.numbering, blocks.table_part)
        self._kept = None
        if self._live is not None:
            self._live.clear()  # a blank open block may have drawn nothing to keep
            self._live = None

    def abort(self, note: str | None = None) -> None:
        """The answer was interrupted or failed: keep what arrived, then show `note`."""
        self.finish()
        if note:
            self._console.print(Text(sanitize(note), style="dim italic"))

    def _hold_cr(self, text: str) -> str:
        """Keep a trailing "\\r" back so that a "\\r\\n" split across pieces stays a newline."""
        if self._held_cr:
            text = "\r" + text
        self._held_cr = text.endswith("\r")
        return text[:-1] if self._held_cr else text

    def _print_block(
        self,
        text: str,
        joined: bool = False,
        numbering: _Numbering | None = None,
        table: _TablePart | None = None,
    ) -> None:
        block = self._markdown(text)
        cut = self._table_cut(table)
        block.go_on(joined, numbering, cut)
        if not block.parsed:  # blank, or only link reference definitions: rich prints nothing
            return
        last = block.parsed[-1].type.replace("_close", "_open")
        gap_after = Markdown.elements.get(last, UnknownElement).new_line  # as rich decides
        if self._gap and not joined and (table is None or table.head):
            _open_gap(block)
        if self._live is None:
            self._console.print(block)
        else:
            self._commit(block)
        if cut is not None and cut.foot:  # a new table has columns of its own
            self._columns = _Columns()
        self._gap = gap_after
        self.committed_blocks += 1

    def _table_cut(self, part: _TablePart | None) -> _TableCut | None:
        return None if part is None else _TableCut(part.head, part.foot, self._columns)

    def _commit(self, block: Markdown) -> None:
        """Turn the live region into `block` as printed, and leave it there for good."""
        assert self._live is not None
        width = self._console.width  # read once: the terminal may be resized meanwhile
        self._keep_if_rewrapped(width)
        if self._kept is None:
            lines = self._render(block, width)
        else:
            if self._kept.source:
                text = block.markup.split("\n")
                fence, source = self._kept.fence, self._kept.source
                block = self._markdown("\n".join([text[fence], *text[fence + 1 + source :]]))
            lines = self._render(block, self._kept.width)[1 if self._kept.source else 0 :]
            lines = _rows_after(lines, self._kept, width)
            self._kept = None
        if not self._live_whole:  # it showed a tail: its rows do not line up with these
            self._live.clear()
        self._live.draw(lines, width)
        self._live.release()
        self._live_whole = True
        self._rows = []
        self._scrolls = True

    def _keep_if_rewrapped(self, width: int) -> None:
        """Made narrower than a line of the region: keep the region where it stands.

        The terminal has re-wrapped or cut its lines, and may have pushed the top ones
        out of reach; drawn again, they would show twice. The rest of the block goes on
        below, from the first character that differs from what was drawn (`_rows_after`).
        """
        assert self._live is not None
        live = self._live
        if width >= live.width or live.fits(width) or not self._live_whole or not self._drawn:
            return  # nothing re-wrapped, or a tail or the first words: redrawn in place
        kept = self._kept or _Kept(live.width, [])
        self._kept = kept._replace(lines=self._drawn)
        self._blocks.cut_items()  # what is kept must not change, as a wider number would
        live.release(width)
        self._rows = []

    def _render(self, block: Markdown, width: int) -> list[list[Segment]]:
        options = self._console.options.update(width=width, height=None)
        return [_trimmed(line) for line in self._console.render_lines(block, options, pad=False)]

    def _draw(self) -> None:
        assert self._live is not None
        width = self._console.width  # read once: the terminal may be resized meanwhile
        self._keep_if_rewrapped(width)
        lines, whole = self._render_tail(width)
        if not whole and (rows := self._blocks.take_rows()) is not None:
            self._print_block(*rows)  # over the last frame, still on the screen
            lines, whole = self._render_tail(width)
        self._live_whole = whole
        self._live.draw(lines, width)
        self._rows = lines
        self._next_draw = self._clock() + self._interval
        self._stale = False
        self.redraws += 1

    def _render_tail(self, width: int) -> tuple[list[list[Segment]], bool]:
        """Render the part of the open block that fits on the screen; whether it is whole.

        The gap a committed block will open above itself is drawn too, so that the
        commit finds every line where it will stay.
        """
        height = max(self._console.height - 1, 1)
        if self._scrolls and (self._kept is not None or self._blocks.in_code):
            if (rest := self._render_rest(width, height)) is not None:
                return rest
            self._scrolls = False  # too tall to go on below what is kept: a tail till it ends
        source = self._blocks.tail(height, height * width)
        if not source.strip():
            self._drawn = None
            return [], True
        lines = self._render(self._open_block(source), width)
        whole = self._kept is None and source == self._blocks.shown_text() and len(lines) <= height
        self._drawn = lines if whole else None
        if not whole:
            self._blocks.cut_items()
        return lines[-height:], whole

    def _render_rest(self, width: int, height: int) -> tuple[list[list[Segment]], bool] | None:
        """What follows the part of the open block kept for good, cut to `width`.

        None when that is taller than the screen and cannot scroll (not code, or code
        lines too long to tell apart): the live view is then the block's tail, whose
        rendering costs the same however long the block (the rows after the kept part
        are rendered once, when the block ends).
        """
        kept = self._kept or _Kept(width, [])
        lines = self._render_open(kept)
        rows = _rows_after(lines, kept, width)
        if len(rows) > height:
            scrolled = self._scroll(kept, lines, rows, width)
            if scrolled is None:
                return None
            lines = rows = scrolled  # from the first line not kept; or all, to keep next
        self._drawn = lines
        return rows, True

    def _render_open(self, kept: _Kept) -> list[list[Segment]]:
        """The open block at the width it started at; from `kept.source` if it has one.

        The whole block is rendered after a narrowing (one block's worth of extra work,
        after a resize only); a tall code block, from the code lines not kept on.
        """
        if not kept.source:
            return self._render(self._open_block(self._blocks.shown_text()), kept.width)
        text, _, _ = self._blocks.code(kept.source)
        return self._render(self._markdown(text), kept.width)[1:]

    def _scroll(
        self, kept: _Kept, lines: list[list[Segment]], rows: list[list[Segment]], width: int
    ) -> list[list[Segment]] | None:
        """A code block grown taller than the screen: keep the rows on its top for good.

        They are whole code lines, drawn already, that do not change and that the
        terminal scrolls out of reach as the block grows: kept, they are never drawn
        again, and the block is rendered from the lines after them. None: the region
        shows a tail instead (rows cut to another width, or not the ones drawn).
        """
        assert self._live is not None
        index, start = _divergence(lines, kept.lines)
        if not self._blocks.in_code or kept.width != width or start:
            return None
        height = max(self._console.height - 1, 1)
        _, fence, complete = self._blocks.code(0)
        source = complete - height // 2  # keep all but the last half screen of lines
        if source <= kept.source:
            return None
        text, _, _ = self._blocks.code(source)
        after = self._render(self._markdown(text), width)[1:]  # the rows from `source` on
        count = len(lines) - len(after) - index  # rows of `rows` before those
        shown = self._rows[:count]
        if count <= 0 or [_text(row) for row in lines[len(lines) - len(after) :]] != [
            _text(row) for row in after
        ]:
            return None
        if len(shown) < count or [_text(row) for row in rows[:count]] != list(map(_text, shown)):
            return None if kept.lines else lines  # not all drawn yet: all now, kept next time
        self._live.keep_top(count)
        self._kept = _Kept(width, [], source, fence)
        return after

    def _open_block(self, source: str) -> Markdown:
        """The open block's markdown, after the gap its commit will open above it."""
        block = self._markdown(source)
        part = self._blocks.table_part
        block.go_on(self._blocks.joined, self._blocks.numbering, self._table_cut(part))
        if self._gap and block.parsed and not block.joined and part is None:
            _open_gap(block)
        return block
