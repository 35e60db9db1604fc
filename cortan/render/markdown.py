"""Streaming markdown on a terminal, in time linear in the length of the answer.

Layer: render (rich and the stdlib). `rich.markdown` is heavy: import this module when an
answer is about to be shown, not at start-up.

The answer is cut into markdown blocks as it arrives (render/blocks.py), each line examined
once: a block ends at a blank line outside a code fence when the next line starts a new
top-level block (not indented, nor the next item of an open list), or at the closing fence
of a top-level code block (fences as in CommonMark). A finished block is printed once, with
rich's `Markdown` (render/elements.py), so the scrollback ends up as rich renders the whole
answer at once. Only the open block is live, in a `LiveRegion` (render/region.py) redrawn
from `feed` (no thread) at most `max_fps` times a second and cut to the tail that fits on
the screen: a redraw costs the same however long the block, and a live view taller than the
screen duplicates lines (rich issue 3263). A code block is the exception: its lines do not
change once complete, so as it grows past the screen its top rows are kept for good,
scrolled out like printed output, and it is rendered from the code lines after them
(`_Kept`, `_scroll`); so are the full rows of one code line taller than the screen
while it arrives (`_scroll_line`: each piece then costs its own characters, and the
line stays plain). Its lines are never broken: one wider than the terminal is written
whole and soft-wrapped by the terminal, so that a mouse copies it as one line
(render/elements.py, `_CodeBlock`), and every height here is counted in rows
(`rows_of`), not lines. The region writes only the cells that changed, and a finished block
that was live whole is committed where it stands: nothing on the screen is drawn twice. A
console that is not an interactive terminal gets no live view, only the finished blocks.

Made narrower than a line of the open block mid-answer (issue 21), a terminal re-wraps
or cuts its lines, and one that re-wraps pushes its top rows into the scrollback, beyond
reach. The block as drawn is then kept where it stands, and the rest of it goes on
below: rendered at the width it started at, from the first character that differs from
what was drawn (a line still arriving goes on, on the next row, from where it was cut),
its lines wider than the terminal left for it to wrap, as it wrapped the rows above. No line
of the answer is drawn twice and nothing above is erased. The next blocks are rendered
at the new width. A bullet list is cut into its items, each printed as the next begins,
and so is a numbered list once it is taller than the screen (render/blocks.py), so a tall list
has no tail to redraw; a table taller than the screen is printed row by row, each row
as it ends, under the columns of the rows printed before (render/elements.py). A paragraph taller
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

import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from rich.cells import cell_len
from rich.console import Console
from rich.markdown import Markdown, UnknownElement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from cortan.render.blocks import Blocks, Numbering, TablePart
from cortan.render.elements import TAB_SIZE, BlockMarkdown, Columns, TableCut, open_gap
from cortan.render.region import LiveRegion, cell_len_of, chars_in_rows, rows_of, text_of
from cortan.render.sanitize import sanitize

# A fence may follow list markers, quote markers and indentation ("1. ```py", "> ~~~");
# only a fence with nothing before it is top-level and ends a block when it closes.


class _Kept(NamedTuple):
    """What of the open block is on the terminal for good: left by a narrowing, or the
    top of a code block taller than the screen, scrolled out of reach.

    The block is rendered at `width` until it ends, and of that rendering `lines` are on
    the terminal (with what the terminal did to them). From `source` on, a code block
    is rendered from its fence (line `fence` of the block) and its code lines from
    `source` on (`in_code`), less the row naming its language on top
    (render/elements.py): the lines before are on the terminal, and so are the first
    `cut` characters of line `source` (the full rows of a line taller than the screen,
    `column` characters of it as drawn), the rest drawn plain (`_CodeBlock.head`).
    """

    width: int
    lines: list[list[Segment]]
    source: int = 0
    fence: int = 0
    in_code: bool = False
    cut: int = 0
    column: int = 0


def _trimmed(line: list[Segment]) -> list[Segment]:
    """`line` less the spaces rich pads it with to the width, where they show nothing.

    Padded, every row fills the screen: made narrower, a re-wrapping terminal turns each
    into a row and a blank one, and a narrowing keeps rows that would have fit; and a
    mouse copies the spaces. Spaces with a background or a line through them are kept.
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


_text = text_of


def _rows_after(lines: list[list[Segment]], kept: _Kept) -> list[list[Segment]]:
    """What `lines` hold past what `kept` shows.

    Lines wider than the terminal are left whole for it to wrap, as it wrapped those
    kept (a code line must copy as one line).
    """
    index, start = _divergence(lines, kept.lines)
    rows = lines[index:]
    if start and rows:  # the line that was still arriving goes on from where it was cut
        length = cell_len_of(rows[0])
        rest = list(Segment.divide(rows[0], [start, length]))[-1] if length > start else []
        rows = [rest, *rows[1:]] if rest else rows[1:]
    return rows


def _count_rows(lines: list[list[Segment]], width: int) -> int:
    """The rows of the terminal `lines` take, each wrapped at `width`."""
    return sum(rows_of(line, width) for line in lines)


def _fitting(lines: list[list[Segment]], height: int, width: int) -> int:
    """How many of the last `lines` fit in `height` rows, each wrapped at `width`."""
    rows, count = 0, 0
    while count < len(lines) and rows + (more := rows_of(lines[-1 - count], width)) <= height:
        rows, count = rows + more, count + 1
    return count


def _last_rows(lines: list[list[Segment]], height: int, width: int) -> list[list[Segment]]:
    """The last lines that fit in `height` rows; a line taller than that, its last rows."""
    if count := _fitting(lines, height, width):
        return lines[-count:]
    if not lines:
        return []
    line, cut = lines[-1], 0  # the last line alone is taller than the screen
    while rows_of(line, width) > height:
        length = cell_len_of(line)
        cut = max((rows_of(line, width) - height) * width, 1)
        line = list(Segment.divide(line, [cut, length]))[-1]
    return [line]


def _first_rows(lines: list[list[Segment]], height: int, width: int) -> list[list[Segment]] | None:
    """`lines`, the last cut to its first rows so that they fit in `height` rows (the
    rest of it is drawn once those are kept); None if the lines above it do not fit."""
    if _count_rows(lines, width) <= height:
        return lines
    room = height - _count_rows(lines[:-1], width)
    if room < 1:
        return None
    text = _text(lines[-1])
    cells = cell_len(text[: chars_in_rows(text, room, width)])
    return [*lines[:-1], next(iter(Segment.divide(lines[-1], [cells, cell_len(text)])))]


def _source_cut(
    drawn: str, line: str, column: int, rows: int, width: int
) -> tuple[int, int] | None:
    """Where to cut a code line drawn plain as `drawn`, from its character `column` as
    drawn, of the code `line`, keeping at most its first `rows` rows: the characters
    kept of `drawn`, and of `line`; (0, 0) for none. A row ending inside a tab drawn as
    spaces is not a cut: the one before it is. None: `drawn` is not `line` as pygments
    draws it (tabs stopping at every fourth character).
    """
    ends = {chars_in_rows(drawn, row, width) for row in range(1, rows + 1)}
    last = max(ends, default=0)
    found, at = (0, 0), 0  # at: in `drawn`
    for index, char in enumerate(line):
        if at >= last:
            break
        size = TAB_SIZE - (column + at) % TAB_SIZE if char == "\t" else 1
        if drawn[at : at + size] != (" " * size if char == "\t" else char):
            return None
        at += size
        if at in ends:
            found = (at, index + 1)
    return found


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
        self._markdown = partial(BlockMarkdown, code_theme=code_theme, hyperlinks=hyperlinks)
        self._interval = 1.0 / max_fps
        self._clock = clock
        self._blocks = Blocks()
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
        self._short = False  # a code line was drawn in part, to fit the screen (_scroll_line)
        self._held_cr = False  # a "\r" that may be the first half of "\r\n"
        self._gap = False  # the next block is preceded by an empty line
        self._columns = Columns()  # of a table printed row by row
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
        numbering: Numbering | None = None,
        table: TablePart | None = None,
    ) -> None:
        block = self._markdown(text)
        cut = self._table_cut(table)
        block.go_on(joined, numbering, cut)
        if not block.parsed:  # blank, or only link reference definitions: rich prints nothing
            return
        last = block.parsed[-1].type.replace("_close", "_open")
        gap_after = Markdown.elements.get(last, UnknownElement).new_line  # as rich decides
        if self._gap and not joined and (table is None or table.head):
            open_gap(block)
        if self._live is None:
            self._console.print(block, crop=False)  # a long code line goes on whole
        else:
            self._commit(block)
        if cut is not None and cut.foot:  # a new table has columns of its own
            self._columns = Columns()
        self._gap = gap_after
        self.committed_blocks += 1

    def _table_cut(self, part: TablePart | None) -> TableCut | None:
        return None if part is None else TableCut(part.head, part.foot, self._columns)

    def _commit(self, block: Markdown) -> None:
        """Turn the live region into `block` as printed, and leave it there for good."""
        assert self._live is not None
        width = self._console.width  # read once: the terminal may be resized meanwhile
        self._keep_if_rewrapped(width)
        if self._kept is None:
            lines = self._render(block, width)
        else:
            if self._kept.in_code:
                text = block.markup.split("\n")
                fence, source = self._kept.fence, self._kept.source
                code = "\n".join([text[fence], *text[fence + 1 + source :]])
                block = self._code_markdown(code, self._kept)
            lines = self._render(block, self._kept.width)[1 if self._kept.in_code else 0 :]
            lines = _rows_after(lines, self._kept)
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
        So too at any new width while the region shows the rest of a code line whose top
        rows are kept (`_scroll_line`): a terminal that re-wraps joins its rows to those,
        and one that does not keeps them as they are; neither can be redrawn in place.
        """
        assert self._live is not None
        live = self._live
        if width == live.width or not self._live_whole or not self._drawn:
            return  # nothing re-wrapped, or a tail or the first words: redrawn in place
        if (width > live.width or live.fits(width)) and not (self._kept and self._kept.cut):
            return
        kept = self._kept or _Kept(live.width, [])
        self._kept = kept._replace(lines=self._drawn)
        self._blocks.cut_items()  # what is kept must not change, as a wider number would
        live.release(width)
        self._rows = []

    def _render(self, block: Markdown, width: int) -> list[list[Segment]]:
        """`block`'s lines at `width`, not cut to it: a code line goes on, for the
        terminal to soft-wrap (rich's `render_lines` would crop it)."""
        options = self._console.options.update(width=width, height=None)
        rendered = self._console.render(block, options)
        return [_trimmed(line) for line in Segment.split_lines(rendered)]

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
        while self._short:  # a long line drawn in part: keep its rows, draw on (`_scroll_line`)
            self._short = False
            lines, self._live_whole = self._render_tail(width)
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
        whole = (
            self._kept is None
            and source == self._blocks.shown_text()
            and _count_rows(lines, width) <= height
        )
        self._drawn = lines if whole else None
        if not whole:
            self._blocks.cut_items()
        return (lines if whole else _last_rows(lines, height, width)), whole

    def _render_rest(self, width: int, height: int) -> tuple[list[list[Segment]], bool] | None:
        """What follows the part of the open block kept for good, cut to `width`.

        None when that is taller than the screen and cannot scroll (not code, or code
        lines too long to tell apart): the live view is then the block's tail, whose
        rendering costs the same however long the block (the rows after the kept part
        are rendered once, when the block ends).
        """
        kept = self._kept or _Kept(width, [])
        lines = self._render_open(kept)
        rows = _rows_after(lines, kept)
        if _count_rows(rows, width) > height:
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
        if not kept.in_code:
            return self._render(self._open_block(self._blocks.shown_text()), kept.width)
        text, _, _ = self._blocks.code(kept.source)
        block = self._code_markdown(text, kept, arriving=not text.endswith("\n"))
        return self._render(block, kept.width)[1:]

    def _code_markdown(self, text: str, kept: _Kept, *, arriving: bool = False) -> BlockMarkdown:
        """A code block's fence line and its code lines from `kept.source` on, the
        first of which less the `kept.cut` characters on the terminal for good: drawn
        plain, in place of a placeholder (a part of a line could read as a fence)."""
        if not kept.cut:
            block = self._markdown(text)
        else:
            fence, _, code = text.partition("\n")
            first, newline, rest = code.partition("\n")
            block = self._markdown(f"{fence}\n{newline}{rest}")
            block.head, block.head_column = first[kept.cut :], kept.column
        block.arriving = arriving
        return block

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
        code, fence, complete = self._blocks.code(0)
        drawn = complete + bool(code.rpartition("\n")[2].strip())  # the line arriving is drawn
        source = min(drawn - _fitting(lines, height // 2, width), complete)  # all but half a screen
        if source <= kept.source:
            return self._scroll_line(kept, lines, width, (fence, complete))
        text, _, _ = self._blocks.code(source)
        after = self._render(self._live_markdown(text), width)[1:]  # the lines from `source` on
        count = len(lines) - len(after) - index  # lines of `rows` before those
        shown = self._rows[:count]
        if _count_rows(after, width) > height:
            return self._scroll_line(kept, lines, width, (fence, complete))
        if count <= 0 or [_text(row) for row in lines[len(lines) - len(after) :]] != [
            _text(row) for row in after
        ]:
            return None
        if len(shown) < count or [_text(row) for row in rows[:count]] != list(map(_text, shown)):
            return None if kept.lines else lines  # not all drawn yet: all now, kept next time
        self._live.keep_top(count)
        self._kept = _Kept(width, [], source, fence, in_code=True)
        return after

    def _scroll_line(
        self, kept: _Kept, lines: list[list[Segment]], width: int, code: tuple[int, int]
    ) -> list[list[Segment]] | None:
        """A code line taller than the screen: keep its top rows for good, and all above.

        Still arriving, it is drawn plain and only grows at its end (render/elements.py,
        `_CodeBlock`), so its full rows do not change: kept, they scroll out like printed
        output, and the region goes on from the rest of the line, each piece costing its
        own characters however long the line. Half a screen stays live, and what does
        not fit yet is drawn once those rows are kept (`_first_rows`, `_short`): the
        region never grows past the screen. The line is the one arriving, or the rest
        of one kept so (`kept.cut`), plain either way. None: no such line, or not drawn
        as it is now: the region shows a tail instead.
        """
        assert self._live is not None
        fence, complete = code
        height = max(self._console.height - 1, 1)
        index = len(lines) - 1 - _fitting(lines, height // 2, width)  # the line to cut
        number = kept.source + index if kept.in_code else complete  # its code line
        arriving = number == complete and index == len(lines) - 1
        shown = self._rows
        if kept.lines or not 0 <= index < len(shown) or not (arriving or (kept.cut and not index)):
            return None
        drawn = _text(shown[index])
        if [_text(row) for row in shown[:index]] != [
            _text(row) for row in lines[:index]
        ] or not _text(lines[index]).startswith(drawn):
            return None
        start, column = (
            (kept.cut, kept.column) if kept.in_code and number == kept.source else (0, 0)
        )
        text, _, _ = self._blocks.code(number)
        line = text.partition("\n")[2].partition("\n")[0]  # the whole code line
        rest = max(height // 2 - _count_rows(lines[index + 1 :], width), 1)
        cut = _source_cut(drawn, line[start:], column, rows_of(shown[index], width) - rest, width)
        if cut is None:
            return None  # drawn otherwise than plain
        drawn_cut, source_cut = cut
        self._live.keep_top(index, drawn_cut)
        moved = column + drawn_cut
        self._kept = _Kept(width, [], number, fence, True, start + source_cut, moved)
        after = self._render_open(self._kept)
        fitted = _first_rows(after, height, width)
        self._short = (  # drawn, its rows are kept next: while that keeps or draws more
            fitted is not None
            and fitted is not after
            and (self._kept != kept or _count_rows(fitted, width) > _count_rows(shown, width))
        )
        return fitted

    def _open_block(self, source: str) -> Markdown:
        """The open block's markdown, after the gap its commit will open above it."""
        block = self._live_markdown(source)
        part = self._blocks.table_part
        block.go_on(self._blocks.joined, self._blocks.numbering, self._table_cut(part))
        if self._gap and block.parsed and not block.joined and part is None:
            open_gap(block)
        return block

    def _live_markdown(self, text: str) -> BlockMarkdown:
        """The open block's markdown, as the live view draws it: a code line still
        arriving is plain until it is complete (render/elements.py, `_CodeBlock`)."""
        block = self._markdown(text)
        block.arriving = self._blocks.in_code and not text.endswith("\n")
        return block
