"""Cutting a streamed markdown answer into blocks, each line examined once.

Layer: render (stdlib only). The rules are CommonMark's where they decide where a block
ends: a block ends at a blank line outside a code fence when the next line starts a new
top-level block (not indented, nor the next item of an open list), or at the closing
fence of a top-level code block. `MarkdownStream` (render/markdown.py) prints each
finished block once and keeps only the open one live; this module holds no rich, so the
cutting can be read (and fuzzed) apart from the drawing.
"""

from __future__ import annotations

import re
from typing import NamedTuple

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


class Numbering(NamedTuple):
    """Where the items of a numbered list printed apart go on from (`Blocks`)."""

    start: int  # the number of the block's first item
    least_last: int  # the last number of the items printed before, as rich counts it


class TablePart(NamedTuple):
    """Which part of a table printed row by row a block is (`Blocks`): every part holds
    the table's head, drawn with the first part only; the last draws the bottom edge."""

    head: bool
    foot: bool


class Finished(NamedTuple):
    """A finished block, and whether it goes on the list of the block before it: the
    items of a list are cut apart as each ends (`Blocks`), and printed with no gap
    between them, as one list is; so are the rows of a tall table."""

    text: str
    joined: bool = False
    numbering: Numbering | None = None
    table: TablePart | None = None


class Blocks:
    """Cuts streamed text into finished markdown blocks and the open one.

    A top-level bullet list is cut before each of its items after the first: an item of
    a bullet list renders the same whatever follows it (rich draws tight and loose lists
    alike), so each is printed for good as it ends, and a list taller than the screen
    never needs a tail redrawn (a terminal narrowed mid-list would leave that tail's rows
    in its scrollback). A numbered list is cut so only once `cut_items` is called: rich
    makes every number as wide as the last one, which a list printed item by item cannot
    know; each item is numbered on from the ones printed before (`Numbering`), and no
    narrower than they were. A table the block starts with is cut so too, before each
    row (`TablePart`): rich sizes its columns from every row, so the rows printed apart
    keep the columns of the first part (render/elements.py).
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

    def push(self, text: str) -> list[Finished]:
        """Add streamed text; return the blocks it finished, oldest first."""
        finished: list[Finished] = []
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

    def take_rows(self) -> Finished | None:
        """The complete rows of the table the open block starts, if it is cut row by row:
        printed at once when it is found taller than the screen, not after its next row
        (a terminal narrowed meanwhile would keep the rows of its tail twice)."""
        if not self._table_rows or len(self._lines) <= 2:
            return None
        return self._cut_rows()

    @property
    def table_part(self) -> TablePart | None:
        """The open block's part of a table printed row by row, if it goes on one."""
        return TablePart(head=False, foot=True) if self._table_goes_on else None

    @property
    def numbering(self) -> Numbering | None:
        """How the open block numbers its items, if it goes on a numbered list."""
        numbered = self.joined and self._marker is not None and self._marker.numbered
        return Numbering(self._number, self._least_last) if numbered else None

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

    def _add_line(self, line: str, finished: list[Finished]) -> None:
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

    def _follow_list(self, line: str, finished: list[Finished]) -> None:
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

    def _check_partial(self, finished: list[Finished]) -> None:
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

    def _cut_rows(self) -> Finished:
        """Print the table's rows so far; the next rows go on under its head, which the
        open block keeps so that they render as its rows (it is not drawn again)."""
        head = not self._table_goes_on
        block = Finished("\n".join(self._lines), table=TablePart(head=head, foot=False))
        self._lines = self._lines[:2]
        self._table_goes_on = True
        return block

    def _cut(self, *, keep_last: bool, next_item: bool = False) -> Finished:
        """End the open block; with `keep_last`, the newest line starts the next one,
        which with `next_item` is the next item of its list."""
        kept = self._lines[-1:] if keep_last else []
        text = "\n".join(self._lines[: len(self._lines) - len(kept)])
        block = Finished(text, self.joined, self.numbering, self.table_part)
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
