"""A table streamed on a short terminal, cut anywhere: what scrolls by is the table rich
draws at once, whenever its widest cells came before it grew taller than the screen
(render/markdown.py prints a tall table row by row, in the columns of the rows before).

Cells are drawn from words, inline markup, escaped pipes, wide characters and empty
cells; the terminal is six rows, so almost every table is printed row by row, and the
widest rows are wider than the terminal, so the columns are narrowed as rich narrows
them.
"""

from __future__ import annotations

import io

import pyte
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from rich.console import Console
from rich.markdown import Markdown

from cortan.render.markdown import MarkdownStream
from tests.fuzz.profiles import examples

WIDTH, HEIGHT = 70, 6

WORD = st.sampled_from(
    ["a", "word", "longer", "*em*", "**strong**", "`co|de`", "\\|", "漢字", "é", "42", "-"]
)
CELL = st.lists(WORD, min_size=0, max_size=4).map(" ".join)


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, list[int]]:
    """A table whose first row holds each column's widest cell, and its cut points."""
    columns = draw(st.integers(1, 4))
    rows = draw(
        st.lists(st.lists(CELL, min_size=columns, max_size=columns), min_size=8, max_size=20)
    )
    widest = [" ".join(["longer"] * 4 + ["x"] * c) for c in range(columns)]  # 27+ cells
    head = "| " + " | ".join(f"h{c}" for c in range(columns)) + " |\n"
    rule = (
        "|" + "|".join(draw(st.sampled_from(["---", ":--", "--:", ":-:"])) for _ in widest) + "|\n"
    )
    body = "".join("| " + " | ".join(row) + " |\n" for row in [widest, *rows])
    after = draw(st.sampled_from(["", "\nAfter.\n", "\n- an item\n"]))
    text = "Before.\n\n" + head + rule + body + after
    cuts = sorted(draw(st.lists(st.integers(1, len(text) - 1), max_size=30, unique=True)))
    return text, cuts


def scrollback(output: str) -> list[str]:
    screen = pyte.HistoryScreen(WIDTH, HEIGHT, history=10_000)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(output)
    rows = ["".join(line[x].data for x in range(WIDTH)) for line in screen.history.top]
    return _visible([*rows, *screen.display])


def _visible(lines: list[str]) -> list[str]:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


@examples(60)
@given(case=tables())
def test_a_tall_table_cut_anywhere_scrolls_by_as_the_whole(
    case: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    text, cuts = case
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    out = io.StringIO()
    console = Console(file=out, width=WIDTH, height=HEIGHT, color_system=None, force_terminal=True)
    stream = MarkdownStream(console, clock=iter(range(10**6)).__next__)
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        stream.feed(text[start:end])
    stream.finish()
    whole = io.StringIO()
    Console(file=whole, width=WIDTH, color_system=None).print(Markdown(text, hyperlinks=False))
    assume("…" not in whole.getvalue())  # rich cuts a word too long for its column; cortan folds it
    assert scrollback(out.getvalue()) == _visible(whole.getvalue().split("\n"))
