"""rich's markdown elements, made to render a streamed answer block by block.

Layer: render (rich). `MarkdownStream` (render/markdown.py) prints each finished block
apart; rich renders one document at a time, so what a block needs to know of the blocks
printed before it (the numbers of a list's earlier items, the columns of a table's
earlier rows, the gap rich leaves after some elements) is carried here, in subclasses
of rich's own elements, and one markdown-it parser serves every block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.console import Console
from rich.markdown import CodeBlock, ListElement, Markdown, MarkdownElement, TableElement
from rich.segment import Segment
from rich.style import Style
from rich.syntax import PygmentsSyntaxTheme, Syntax, TokenType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from rich.console import ConsoleOptions, RenderResult

    from cortan.render.blocks import Numbering


class _NumberedList(ListElement):
    """rich's list; numbered, at least as wide as the items of it printed before.

    rich makes every number as wide as the last one, counted one past it (`number +
    len(items)`: the ninth item widens them all); the items of a tall list are printed
    apart (`Blocks`), each knowing only the numbers before it, so each goes on as wide
    as those or as its own number, whichever is wider.
    """

    least_last = 0

    @classmethod
    def create(cls, markdown: Markdown, token: Token) -> ListElement:
        element = super().create(markdown, token)
        if token.level == 0 and isinstance(markdown, BlockMarkdown) and isinstance(element, cls):
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
class Columns:
    """The columns of a table printed row by row: the width each column's text wants in
    the rows so far, padding included (rich's measure, before it narrows columns to
    the screen), and the rows above the first row (top edge, head, rule), which the
    later parts leave out."""

    wanted: list[int] = field(default_factory=list)
    head_rows: dict[int, int] = field(default_factory=dict)  # by the width drawn at


class TableCut(NamedTuple):
    """How a part of a table printed row by row is drawn: with its head or not, with its
    bottom edge or not, in the table's columns."""

    head: bool
    foot: bool
    columns: Columns


class _Table(TableElement):
    """rich's table; a part of one printed row by row (`Blocks`) is laid out from the
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

    cut: TableCut | None = None

    @classmethod
    def create(cls, markdown: Markdown, token: Token) -> MarkdownElement:
        element = super().create(markdown, token)
        if token.level == 0 and isinstance(markdown, BlockMarkdown) and isinstance(element, cls):
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


class _CodeBlock(CodeBlock):
    """rich's code block, drawn so that what a mouse copies off the screen is the code.

    rich paints the theme's background under the code and a cell of padding around it,
    every row filled with spaces to the block's width, and breaks a long line with a
    newline: copied in tmux, iTerm or gnome-terminal, a command came back with a leading
    space (which bash's ``HISTCONTROL=ignorespace`` keeps out of history), trailing
    spaces, and cut in two, the first half run alone when pasted (issue 21). As bat,
    aichat and glow do it, the code is highlighted in the theme's colours with no
    background and no padding (a background takes spaces to paint, or an erase that
    terminals re-wrap each their own way), plain text in the terminal's own colour (a
    theme's is chosen for its background: monokai's near-white would vanish on a light
    terminal). A top-level block writes each line whole, however long: the terminal
    soft-wraps it, and copies it as one line. Where it starts shows by a dim row above
    it holding the fence's language (empty when it has none), where it ends by the empty
    row rich leaves after a block. A block inside a list or a quote is indented by its
    container (which would copy too, and which cuts what passes its width): it folds.

    The line still arriving in the open block's code (`arriving`) is drawn plain, and
    highlighted once complete: each piece then only adds characters where the cursor
    is, without going back to colour a token again ("ech" becoming "echo", a string
    closing), so a long line is laid down in one run the terminal wraps.

    A line taller than the screen keeps its top rows on the terminal for good as it
    arrives (render/markdown.py, `_scroll_line`): the block is then drawn from the rest
    of that line (`head`, in place of its first code line), plain, and never lexed:
    its colours depend on the start of the line, which would take lexing the whole line
    again at every redraw, and half a line coloured would look like a fault.
    """

    top = True  # at the top level: not inside a list or a quote
    arriving = False  # its last line is still arriving (`BlockMarkdown.arriving`)
    head: str | None = None  # drawn plain in place of the first code line (`BlockMarkdown.head`)
    head_column = 0  # the characters drawn of that line before `head`, for its tab stops

    @classmethod
    def create(cls, markdown: Markdown, token: Token) -> CodeBlock:
        block = super().create(markdown, token)
        if isinstance(block, _CodeBlock):
            block.top = token.level == 0
            block.arriving = (
                isinstance(markdown, BlockMarkdown)
                and markdown.arriving
                and token is markdown.parsed[-1]
            )
            if isinstance(markdown, BlockMarkdown) and token.level == 0:
                block.head, block.head_column = markdown.head, markdown.head_column
        return block

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        if self.head is None:
            text = self._highlight(code)
        else:  # the first code line is a placeholder for `head`
            rest = code.partition("\n")[2]
            text = self._plain_head(self.head if rest else self.head.rstrip())
            if rest:
                text.append("\n")
                text.append_text(self._highlight(rest))
        text.no_wrap = self.top
        text.overflow = "ignore" if self.top else "fold"
        label = "" if self.lexer_name == "text" else self.lexer_name
        yield Text(label, style="dim", no_wrap=True, overflow="ellipsis")
        yield text

    def _highlight(self, code: str) -> Text:
        """`code` in the theme's colours; its last line plain while it is arriving, and
        not lexed: a long line would cost its size at every redraw."""
        if self.arriving:
            complete, newline, last = code.rpartition("\n")
            text = self._highlight_all(complete) if newline else Text()
            text.append(newline + last.expandtabs(TAB_SIZE))  # as pygments expands them
            return text
        return self._highlight_all(code)

    def _highlight_all(self, code: str) -> Text:
        syntax = Syntax(code, self.lexer_name, theme=_colours(self.theme), tab_size=TAB_SIZE)
        text = syntax.highlight(code)
        text.remove_suffix("\n")  # pygments ends the code with one
        return text

    def _plain_head(self, head: str) -> Text:
        """`head`, plain, its tabs stopping where pygments stops them in the whole line
        (every fourth character: `str.expandtabs`)."""
        pad = self.head_column % TAB_SIZE
        return Text((" " * pad + head).expandtabs(TAB_SIZE)[pad:])


TAB_SIZE = 4  # rich's `Syntax` default: pygments stops a code line's tabs every fourth character


class _TokenColours(PygmentsSyntaxTheme):
    """A pygments theme's colours for tokens, without its background, and no colour for
    text in the theme's plain colour (or in none): the terminal's own shows instead."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._plain = self._pygments_style_class.style_for_token(())["color"]  # `Token`
        self._background_style = Style.null()

    def get_style_for_token(self, token_type: TokenType) -> Style:
        try:
            return self._style_cache[token_type]
        except KeyError:
            token = self._pygments_style_class.style_for_token(token_type)
            colour = token["color"]
            style = self._style_cache[token_type] = Style(
                color=f"#{colour}" if colour and colour != self._plain else None,
                bold=token["bold"],
                italic=token["italic"],
                underline=token["underline"],
            )
            return style


@lru_cache(maxsize=8)
def _colours(name: str) -> _TokenColours:
    return _TokenColours(name)


class BlockMarkdown(Markdown):
    """rich's `Markdown`, parsed by one parser shared by every block and redraw.

    rich builds a new `MarkdownIt` for each instance, which cost about a fifth of the
    stream's CPU at 2k tokens (two instances per finished block: its redraw and its
    print). The attributes are rich's own, set as its `__init__` sets them; the tests
    that compare the stream with one rendering of the whole answer guard the copy.
    """

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements,
        "fence": _CodeBlock,
        "code_block": _CodeBlock,
        "ordered_list_open": _NumberedList,
        "table_open": _Table,
    }
    _parser: MarkdownIt | None = None
    joined = False  # the next items of a list printed before: no empty row on top
    least_last = 0  # see `_NumberedList`
    table: TableCut | None = None  # see `_Table`
    arriving = False  # the block ends in a top-level code line still arriving: see `_CodeBlock`
    head: str | None = None  # the rest of a code line whose start is kept: see `_CodeBlock`
    head_column = 0  # see `_CodeBlock`

    def __init__(self, markup: str, *, code_theme: str, hyperlinks: bool) -> None:
        parser = BlockMarkdown._parser
        if parser is None:
            from markdown_it import MarkdownIt

            parser = BlockMarkdown._parser = MarkdownIt().enable("strikethrough").enable("table")
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
        self, joined: bool, numbering: Numbering | None, table: TableCut | None = None
    ) -> None:
        """Render as the next items of the list printed before, numbered on from it, or
        as a part of a table printed row by row (no empty row on top of its rows)."""
        self.joined = joined or (table is not None and not table.head)
        self.table = table
        if numbering is None or not self.parsed or self.parsed[0].type != "ordered_list_open":
            return
        self.parsed[0].attrs["start"] = numbering.start  # "1." each: numbered on all the same
        self.least_last = numbering.least_last


def open_gap(block: Markdown) -> None:
    """Render `block` as if it followed an element that wants an empty line after it.

    rich decides from the last element closed, nested ones included, so the gap cannot be
    printed from outside; a token rich does not know renders nothing but asks for it.
    """
    first = block.parsed[0]
    gap = first.copy(type="cortan_gap", tag="", nesting=0, level=0, children=None, content="")
    block.parsed.insert(0, gap)
