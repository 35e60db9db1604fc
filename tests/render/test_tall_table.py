"""A table taller than the screen is printed row by row (issue 21, resizing mid-answer).

rich sizes a table's columns from every row, so a tall table had only its tail live,
redrawn whole at the end: a terminal narrowed meanwhile kept the rows it had pushed up,
and the table showed twice. Once taller than the screen it is now printed as each row
ends, under the columns of the rows before (tmux: tests/e2e/test_redraw.py).
"""

from __future__ import annotations

import pytest

from tests.render.test_list_narrowing import terminal
from tests.render.test_markdown import (
    HEIGHT,
    WIDTH,
    FakeClock,
    output,
    plain_console,
    rendered_at_once,
    scrollback,
    stream,
    visible_lines,
)


def table(rows: int, *, head: str = "| name | xs | value |\n|:---|:--:|---:|\n") -> str:
    return head + "".join(
        f"| row {i} | {'x' * (i % 7)} | the *{i}th* value |\n" for i in range(rows)
    )


ANSWERS = {
    "between paragraphs": "Before.\n\n" + table(60) + "\nAfter.\n",
    "last, no line end": "Before.\n\n" + table(40).removesuffix("\n"),
    "first": table(50) + "\n- a list after it\n",
    "a short row": "Before.\n\n" + table(40) + "| one |\n\nAfter.\n",
    "a row without pipes": "Before.\n\n" + table(40) + "lone\n\nAfter.\n",
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
@pytest.mark.parametrize("size", [1, 5, 33])
def test_a_tall_table_is_printed_row_by_row_as_the_whole(
    monkeypatch: pytest.MonkeyPatch, answer: str, size: int
) -> None:
    """Every row's columns are those the first rows gave (all its rows are as wide by
    then): the scrollback is the table rich draws at once, and each row was printed as
    it ended, not the whole table again at the end."""
    console = terminal(monkeypatch)
    pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
    md = stream(console, pieces, clock=FakeClock(0.02))
    assert md.committed_blocks > 40 - HEIGHT
    assert scrollback(output(console)) == visible_lines(rendered_at_once(answer))


def test_a_table_that_fits_is_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = "Before.\n\n" + table(8) + "\nAfter.\n"
    console = terminal(monkeypatch)
    md = stream(console, [answer[i : i + 4] for i in range(0, len(answer), 4)])
    assert md.committed_blocks == 3
    assert scrollback(output(console)) == visible_lines(rendered_at_once(answer))


def test_a_tall_table_on_a_console_that_is_not_live_is_printed_whole() -> None:
    answer = "Before.\n\n" + table(60) + "\nAfter.\n"
    console = plain_console()
    md = stream(console, [answer[i : i + 4] for i in range(0, len(answer), 4)])
    assert md.committed_blocks == 3
    assert output(console) == rendered_at_once(answer)


def test_a_wider_row_widens_its_columns_from_there_and_nothing_is_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one difference from the whole table (module docstring of render/markdown.py):
    a row wider than the rows printed before widens the columns from there on, as rich
    would have widened them all. Held to the widths before, "12345" was drawn "12…"."""
    wider = "| a row far wider than the rest | 12345 | value #wide |\n"
    answer = table(40) + wider + "| row 99 | 123 | the last |\n"
    console = terminal(monkeypatch)
    stream(console, [answer[i : i + 7] for i in range(0, len(answer), 7)], clock=FakeClock(0.02))
    shown = scrollback(output(console))
    assert "".join(shown).count("#wide") == 1
    assert any(" 12345 " in line for line in shown)
    assert any("a row far wider than the rest" in line for line in shown)
    assert max(len(line) for line in shown) <= WIDTH
    for i in [*range(40), 99]:
        assert "".join(shown).count(f"row {i} ") == 1
