"""How commands print their tables (``models``, ``keys``, ``doctor``, ``tools``, ``grants``).

On a terminal a table fits the window and long cells fold; in a pipe there is no
window, so rows are never wrapped (one line per row, for ``grep`` and ``cut``) and
never padded: each line ends where its text ends, not at the widest row's width.
``tools`` and ``grants`` keep their tab-separated lines in a pipe (:func:`print_rows`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

PIPE_WIDTH = 10_000


def make_table_console(color: bool) -> Console:
    from rich.console import Console

    width = None if sys.stdout.isatty() else PIPE_WIDTH
    # No markup: cells hold server text (model names), and "[link=…]" in one would
    # otherwise become an OSC 8 hyperlink that hides its target (docs/security.md).
    return Console(no_color=not color, highlight=False, width=width, markup=False, emoji=False)


def print_rows(headers: Sequence[str], rows: Iterable[Sequence[str]], color: bool) -> None:
    """Rows of text made visible already: on a terminal a table with ``headers`` that
    fits the window, as ``models`` prints (they were tab-separated there too, with no
    header, folding to column 0); in a pipe one tab-separated line per row, no header,
    as scripts have read them (``cut -f2``)."""
    if not sys.stdout.isatty():
        sys.stdout.write("".join("\t".join(row) + "\n" for row in rows))
        sys.stdout.flush()
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    print_tables([table], color)


def print_tables(tables: list[RenderableType], color: bool) -> None:
    """Print ``tables`` one after another, a blank line between them."""
    console = make_table_console(color)
    terminal = sys.stdout.isatty()
    for number, table in enumerate(tables):
        if number:
            console.print()
        if terminal:
            console.print(table)
            continue
        with console.capture() as captured:
            console.print(table)
        text = "\n".join(line.rstrip() for line in captured.get().splitlines())
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
