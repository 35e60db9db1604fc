"""One code line taller than the screen, streamed: it costs its size, not the screen's.

Drawn plain as it arrives, the line only grows at its end, so its full rows are kept for
good as they leave the screen (render/markdown.py, `_scroll_line`) instead of its last
screenful being redrawn at every piece (22.5 times printing an 8 KB line once). Replayed
through pyte, scrollback included, the line must read once, whole and in order.
"""

from __future__ import annotations

import io
import itertools
import re

import pyte
import pytest
from rich.console import Console

from cortan.render.elements import BlockMarkdown
from cortan.render.markdown import MarkdownStream


class Clock:
    """A monotonic clock that moves 20 ms each time it is read: a redraw most pieces."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.02
        return self.now


def long_line(size: int, *, tab: bool = False) -> str:
    """A Python line of about `size` characters whose every item can be told apart."""
    items: list[str] = []
    while sum(len(item) for item in items) < size:
        n = len(items)
        items.append(f"'k{n:05}':{chr(9) if tab and n % 7 == 3 else ' '}{n % 97}, ")
    return "data = {" + "".join(items) + "}"


def answer_with(*code: str) -> str:
    return "Before.\n\n```python\n" + "\n".join(code) + "\n```\n\nAfter.\n"


def console(width: int, height: int, monkeypatch: pytest.MonkeyPatch) -> Console:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    return Console(
        file=io.StringIO(),
        width=width,
        height=height,
        color_system="truecolor",
        force_terminal=True,
    )


def written(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def streamed(answer: str, console: Console, sizes: list[int]) -> str:
    """`answer` fed in pieces of the `sizes` in turn; what the console was written."""
    md = MarkdownStream(console, clock=Clock())
    start = 0
    for size in itertools.cycle(sizes):
        if start >= len(answer):
            break
        md.feed(answer[start : start + size])
        start += size
    md.finish()
    return written(console)


def printed_once(answer: str, width: int, height: int, monkeypatch: pytest.MonkeyPatch) -> str:
    once = console(width, height, monkeypatch)
    once.print(BlockMarkdown(answer, code_theme="monokai", hyperlinks=False), crop=False)
    return written(once)


def shown(output: str, width: int, height: int) -> list[str]:
    """The rows of a `width` x `height` terminal after `output`, scrollback included."""
    screen = pyte.HistoryScreen(width, height, history=100_000)
    screen.set_mode(pyte.modes.LNM)  # a tty turns "\n" into "\r\n"
    pyte.Stream(screen).feed(output)
    history = ["".join(line[x].data for x in range(width)) for line in screen.history.top]
    return [row.rstrip() for row in [*history, *screen.display] if row.strip()]


def keys(rows: list[str]) -> list[str]:
    """The line's items as the screen shows them, soft-wrapped rows joined."""
    return re.findall(r"'k(\d{5})'", "".join(rows))


@pytest.mark.parametrize(
    ("size", "width", "height"), [(8_000, 80, 24), (2_600, 80, 30), (32_000, 80, 24)]
)
def test_a_line_taller_than_the_screen_costs_its_size_not_the_screens(
    monkeypatch: pytest.MonkeyPatch, size: int, width: int, height: int
) -> None:
    """Issue 21's bound, 3x printing the answer once: the last screenful of the line was
    redrawn at every piece."""
    line = long_line(size)
    answer = answer_with(line)
    out = streamed(answer, console(width, height, monkeypatch), [4])
    once = printed_once(answer, width, height, monkeypatch)
    assert len(out) <= 3 * len(once), f"{len(out)} written, {len(once)} printed once"
    rows = shown(out, width, height)
    assert rows == shown(once, width, height)
    assert keys(rows) == [f"{n:05}" for n in range(line.count("'k"))]
    assert re.sub(r"\s", "", "".join(rows)).count(re.sub(r"\s", "", line)) == 1


def test_lines_around_a_tall_line_tabs_and_large_pieces_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines before and after it, tabs (spaces to every fourth character, where the kept
    rows end matters), pieces of one to a thousand characters (more than the screen
    holds at once: drawn in parts, each kept before the next): the screen ends as the
    answer printed once, within the bound."""
    code = ["x = 1", long_line(3_000, tab=True), "y = 2", long_line(1_500), "", "z = 3"]
    answer = answer_with(*code)
    once = printed_once(answer, 60, 12, monkeypatch)
    for sizes in ([*[4] * 40, 1, 37, 180], [4, 1_000, 9, 300]):
        out = streamed(answer, console(60, 12, monkeypatch), sizes)
        assert len(out) <= 3 * len(once), (sizes, len(out), len(once))
        assert shown(out, 60, 12) == shown(once, 60, 12), sizes


def test_a_tall_line_stays_plain_and_the_next_lines_are_highlighted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The price (docs/repl.md): a line whose rows left the screen is not coloured when
    it completes; the lines after it are."""
    answer = answer_with(long_line(4_000), "import os")
    out = streamed(answer, console(80, 24, monkeypatch), [4])
    assert re.search(r"\x1b\[[0-9;]*38;[25];[0-9;]+mimport", out)  # a keyword, coloured
    assert not re.search(r"\x1b\[[0-9;]*38;[25];[0-9;]+mk0", out)  # the line's strings: plain
