"""A bullet list narrowed mid-item: every item once (issue 21, the tall list).

The items are printed as each ends; the next item's first words are never drawn as part
of the one before, so a narrowing that keeps what is drawn leaves no copy behind.
"""

from __future__ import annotations

import pytest

from cortan.render.markdown import MarkdownStream
from tests.render.test_markdown import FakeClock, Terminal


@pytest.mark.parametrize("cut", [1, 2, 3, 10, 18, 24])
def test_narrowing_mid_item_draws_every_item_once(
    monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    term = Terminal(100, monkeypatch)
    md = MarkdownStream(term.console, clock=FakeClock(1.0))
    md.feed("Before.\n\n")
    for i in range(12):
        line = f"- item # tall {i:02} is here\n"
        if i == 7:
            md.feed(line[:cut])
            term.pump()
            term.resize(45)
            md.feed(line[cut:])
        else:
            md.feed(line[:10])
            md.feed(line[10:])
    md.finish()
    shown = term.text()
    for i in range(12):
        assert shown.count(f"#tall{i:02}") == 1, (i, shown)
