"""A list narrowed mid-item: every item once (issue 21, the tall list).

The items are printed as each ends; the next item's first words are never drawn as part
of the one before, so a narrowing that keeps what is drawn leaves no copy behind.
"""

from __future__ import annotations

import io

import pyte
import pytest
from rich.console import Console

from cortan.render.markdown import MarkdownStream
from tests.render.test_markdown import (
    HEIGHT,
    WIDTH,
    FakeClock,
    Terminal,
    output,
    plain_console,
    rendered_at_once,
    scrollback,
    stream,
    visible_lines,
)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 10, 18, 24])
@pytest.mark.parametrize(
    ("marker", "count", "narrowed_at"),
    [("- ", 12, 7), ("{n}. ", 40, 30)],  # the numbered list is tall by then
    ids=["bullet", "numbered"],
)
def test_narrowing_mid_item_draws_every_item_once(
    monkeypatch: pytest.MonkeyPatch, cut: int, marker: str, count: int, narrowed_at: int
) -> None:
    term = Terminal(100, monkeypatch)
    md = MarkdownStream(term.console, clock=FakeClock(1.0))
    md.feed("Before.\n\n")
    for i in range(count):
        line = marker.format(n=i + 1) + f"item # tall {i:02} is here\n"
        if i == narrowed_at:
            md.feed(line[:cut])
            term.pump()
            term.resize(45)
            md.feed(line[cut:])
        else:
            md.feed(line[:10])
            md.feed(line[10:])
    md.finish()
    shown = term.text()
    for i in range(count):
        assert shown.count(f"#tall{i:02}") == 1, (i, shown)


def numbered(count: int, *, lazy: bool = False) -> str:
    """A numbered list; lazy, every item is "1." (numbered on all the same)."""
    return "Before.\n\n" + "".join(
        f"{1 if lazy else i + 1}. item #n{i:02} with *emphasis*\n" for i in range(count)
    )


def terminal(monkeypatch: pytest.MonkeyPatch, height: int = HEIGHT) -> Console:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    return Console(
        file=io.StringIO(), width=WIDTH, height=height, color_system=None, force_terminal=True
    )


@pytest.mark.parametrize("end", ["\n", ""], ids=["line-end", "no-line-end"])
@pytest.mark.parametrize("lazy", [False, True], ids=["numbered", "lazy"])
def test_a_tall_numbered_list_is_printed_item_by_item_as_the_whole(
    monkeypatch: pytest.MonkeyPatch, lazy: bool, end: str
) -> None:
    """Taller than the screen, a numbered list is printed item by item from then on, as
    wide and numbered as rich draws the whole list (it got tall past the ninth item).
    An answer that ends on its last item's line printed that item as "1" (lazy)."""
    answer = numbered(40, lazy=lazy).removesuffix("\n") + end
    pieces = [answer[i : i + 3] for i in range(0, len(answer), 3)]
    console = terminal(monkeypatch)
    md = stream(console, pieces, clock=FakeClock(0.02))
    assert md.committed_blocks > 40 - HEIGHT  # cut apart: each item printed as it ended
    assert scrollback(output(console)) == visible_lines(rendered_at_once(answer))


def test_a_numbered_list_that_fits_is_printed_whole() -> None:
    """Not tall, a numbered list is one block: rich numbers it as wide as its last."""
    answer = numbered(12)
    md = MarkdownStream(plain_console())
    for piece in answer:
        md.feed(piece)
    md.finish()
    assert md.committed_blocks == 2
    assert output(md._console) == rendered_at_once(answer)


def test_a_numbered_list_tall_before_its_ninth_item_widens_from_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one difference from the whole list: on a screen of five rows the items before
    the ninth are printed before a tenth would widen the numbers (module docstring)."""
    console = terminal(monkeypatch, height=6)
    md = MarkdownStream(console, clock=FakeClock(1.0))
    for i in range(12):
        md.feed(f"{i + 1}. item {i}\n")
    md.finish()
    screen = pyte.HistoryScreen(WIDTH, 6, history=1000)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(output(console))
    rows = ["".join(line[x].data for x in range(WIDTH)).rstrip() for line in screen.history.top]
    rows += [line.rstrip() for line in screen.display]
    items = [row for row in rows if "item" in row]
    assert items == [f" {i + 1} item {i}" for i in range(12)]  # rich: "  1" to "  9"
