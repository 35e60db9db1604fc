"""Tests for cortan.render.region: the live region writes only what changed, and the
screen always shows exactly the lines it was given.

Each redraw is replayed through pyte (a terminal emulator) and the screen compared,
character and colour, with the lines drawn; the bytes are counted beside.
"""

from __future__ import annotations

import io

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.segment import Segment
from rich.style import Style

from cortan.render.region import SYNC_OFF, SYNC_ON, Line, LiveRegion, rows_of

WIDTH, HEIGHT = 40, 12
STYLES = [None, Style(color="red"), Style(bold=True), Style(bgcolor="blue")]


class Screen:
    """A console writing into a pyte screen, and what it wrote."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.file = io.StringIO()
        self.console = Console(
            file=self.file, width=width, height=height, color_system="standard",
            force_terminal=True, force_interactive=True,
        )  # fmt: skip
        self.screen = pyte.Screen(width, height)
        self.screen.set_mode(pyte.modes.LNM)  # "\n" as a tty with onlcr turns it
        self.stream = pyte.Stream(self.screen)
        self.read = 0

    def pump(self) -> str:
        text = self.file.getvalue()[self.read :]
        self.read += len(text)
        self.stream.feed(text)
        return text

    def rows(self) -> list[list[tuple[str, str]]]:
        """Each row as (character, foreground) pairs, blank cells dropped from the end."""
        out = []
        for y in range(self.screen.lines):
            row = [
                (self.screen.buffer[y][x].data, self.screen.buffer[y][x].fg)
                for x in range(self.screen.columns)
            ]
            while row and row[-1][0] == " " and row[-1][1] == "default":
                row.pop()
            out.append(row)
        return out


def expected(lines: list[Line], height: int = HEIGHT) -> list[list[tuple[str, str]]]:
    colours = {None: "default", "red": "red"}
    rows = []
    for line in lines:
        row = []
        for segment in line:
            name = segment.style.color.name if segment.style and segment.style.color else None
            row += [(char, colours[name]) for char in segment.text]
        while row and row[-1] == (" ", "default"):
            row.pop()
        rows.append(row)
    return rows + [[] for _ in range(height - len(rows))]


def line(*parts: tuple[str, Style | None]) -> Line:
    return [Segment(text, style) for text, style in parts]


segments = st.lists(
    st.tuples(st.text(alphabet="ab c", min_size=1, max_size=8), st.sampled_from(STYLES)),
    max_size=4,
)
lines_strategy = st.lists(segments.map(lambda parts: line(*parts)), max_size=HEIGHT - 1)


def fits(lines: list[Line]) -> list[Line]:
    """Lines cut to the screen's width, as MarkdownStream renders them."""
    return [
        list(Segment.adjust_line_length(one, WIDTH))
        if sum(len(s.text) for s in one) > WIDTH
        else one
        for one in lines
    ]


@settings(max_examples=150, deadline=None)
@given(st.lists(lines_strategy.map(fits), min_size=1, max_size=6))
def test_screen_shows_exactly_the_lines_drawn(frames: list[list[Line]]) -> None:
    term = Screen()
    region = LiveRegion(term.console)
    for frame in frames:
        region.draw(frame)
        written = term.pump()
        assert term.rows() == expected(frame)
        if written:
            assert written.startswith(SYNC_ON) and written.endswith(SYNC_OFF)
    region.clear()
    term.pump()
    assert term.rows() == expected([])
    assert (term.screen.cursor.x, term.screen.cursor.y) == (0, 0)


def test_an_appended_piece_costs_its_own_characters() -> None:
    term = Screen()
    region = LiveRegion(term.console)
    region.draw([line(("Some words", None))])
    term.pump()
    region.draw([line(("Some words and more", None))])
    assert term.pump() == f"{SYNC_ON} and more{SYNC_OFF}"


def test_padding_after_the_change_is_not_written_again() -> None:
    pad = Style(bgcolor="blue")
    term = Screen()
    region = LiveRegion(term.console)
    region.draw([line(("x = 1", pad), (" " * 30, pad)), line((" " * 35, pad))])
    term.pump()
    region.draw([line(("x = 12", pad), (" " * 29, pad)), line((" " * 35, pad))])
    written = term.pump()
    assert written.count(" ") == 0 and "2" in written  # just the new character, in place


def test_unchanged_lines_write_nothing() -> None:
    term = Screen()
    region = LiveRegion(term.console)
    region.draw([line(("same", None))])
    term.pump()
    region.draw([line(("same", None))])
    assert term.pump() == ""


def test_release_keeps_the_lines_and_starts_below() -> None:
    term = Screen()
    region = LiveRegion(term.console)
    region.draw([line(("kept", None)), line(("also kept", None))])
    region.release()
    region.draw([line(("next", None))])
    term.pump()
    assert [row for row in term.rows() if row][:3] == expected(
        [line(("kept", None)), line(("also kept", None)), line(("next", None))], 3
    )


@pytest.mark.parametrize("new_width", [60, 25])
def test_a_resize_redraws_the_region_at_the_new_width(new_width: int) -> None:
    term = Screen()
    region = LiveRegion(term.console)
    term.console.print("before")
    region.draw([line(("a" * 20, None)), line(("b" * 20, None))])
    term.pump()
    term.console.width = new_width  # what rich reads after SIGWINCH
    term.screen.resize(HEIGHT, new_width)  # pyte does not re-wrap: widen, or lines this short
    region.draw([line(("c" * 20, None))])
    term.pump()
    assert [row for row in term.rows() if row] == expected(
        [line(("before", None)), line(("c" * 20, None))], 2
    )


def test_a_region_started_on_a_written_line_writes_only_the_rest() -> None:
    term = Screen()
    term.console.file.write("Some words")  # as render/lead.py writes them, before rich
    term.pump()
    region = LiveRegion(term.console, line(("Some words", None)))
    region.draw([line(("Some words and more", None)), line(("next", None))])
    assert term.pump() == f"{SYNC_ON} and more\nnext{SYNC_OFF}"
    assert term.rows() == expected([line(("Some words and more", None)), line(("next", None))])


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab c", min_size=1, max_size=WIDTH - 1), lines_strategy.map(fits))
def test_a_region_started_on_a_written_line_shows_exactly_what_it_draws(
    written: str, frame: list[Line]
) -> None:
    term = Screen()
    term.console.file.write(written)
    region = LiveRegion(term.console, line((written, None)))
    region.draw(frame)
    term.pump()
    assert term.rows() == expected(frame)
    region.clear()
    term.pump()
    assert term.rows() == expected([])


def test_release_at_a_narrower_width_goes_down_past_the_rewrapped_rows() -> None:
    """Never up, never an erase: the rows above the cursor may have left the screen."""
    term = Screen()
    region = LiveRegion(term.console)
    region.draw([line(("a" * 40, None)), line(("b" * 25, None)), line(("c" * 10, None))])
    region.draw([line(("a" * 39 + "x", None)), line(("b" * 25, None)), line(("c" * 10, None))])
    term.pump()  # the cursor waits after the first line's last cell, wrapped into 3 rows at 15
    assert not region.fits(15) and region.fits(40)
    region.release(15)
    # down the 2 rows of "b" and the 1 of "c" below the cursor's row, then a new line
    assert term.pump() == f"{SYNC_ON}\x1b[3B\n{SYNC_OFF}"
    region.draw([line(("next", None))])
    assert term.pump() == f"{SYNC_ON}next{SYNC_OFF}"


def test_release_at_a_wider_width_counts_lines() -> None:
    term = Screen()
    region = LiveRegion(term.console)
    region.draw([line(("a" * 40, None)), line(("b" * 5, None))])
    region.draw([line(("a" * 39 + "x", None)), line(("b" * 5, None))])
    term.pump()
    region.release(60)
    assert term.pump() == f"{SYNC_ON}\x1b[1B\n{SYNC_OFF}"


def wrapped(lines: list[Line], width: int = WIDTH) -> list[Line]:
    """The rows a terminal `width` columns wide shows `lines` in, a long line soft-wrapped."""
    rows: list[Line] = []
    for one in lines:
        length = sum(len(segment.text) for segment in one)
        cuts = [*range(width, length, width), length] if length > width else [length]
        rows += [list(piece) for piece in Segment.divide(one, cuts)] if length else [[]]
    return rows


long_segments = st.lists(
    st.tuples(st.text(alphabet="ab c", min_size=1, max_size=40), st.sampled_from(STYLES)),
    max_size=4,
)
long_lines = st.lists(long_segments.map(lambda parts: line(*parts)), max_size=6).filter(
    lambda lines: len(wrapped(lines)) < HEIGHT
)


@settings(max_examples=150, deadline=None)
@given(st.lists(long_lines, min_size=1, max_size=6))
def test_lines_wider_than_the_screen_are_soft_wrapped_and_counted_in_rows(
    frames: list[list[Line]],
) -> None:
    """A code line is written whole for the terminal to wrap (a copy gives it as one
    line): the region counts the rows it takes to move the cursor and redraw."""
    term = Screen()
    region = LiveRegion(term.console)
    for frame in frames:
        region.draw(frame)
        term.pump()
        assert term.rows() == expected(wrapped(frame))
    region.clear()
    term.pump()
    assert term.rows() == expected([])
    assert (term.screen.cursor.x, term.screen.cursor.y) == (0, 0)


def test_a_line_growing_past_the_screens_width_is_written_in_one_run() -> None:
    """Each piece goes on where the cursor is, past the end of a row too: no newline
    and no cursor movement inside the line, so the terminal wraps it softly."""
    term = Screen()
    region = LiveRegion(term.console)
    command = "x" * 10 + "y" * 30 + "z" * 45  # the second piece ends on the row's last cell
    written = ""
    for end in (10, 40, 60, 85):
        region.draw([line(("$ ", None)), line((command[:end], None))])
        written += term.pump()
    frames = written.replace(SYNC_ON, "").replace(SYNC_OFF, "")
    assert frames == "$ \n" + command
    assert term.rows() == expected([line(("$ ", None)), *wrapped([line((command, None))])])


def test_rows_are_counted_as_the_terminal_wraps_wide_characters() -> None:
    """A character two cells wide that does not fit at the end of a row goes on the next."""
    assert rows_of(line(("中中中", None)), 3) == 3  # 6 cells, and still 3 rows of 3
    assert rows_of(line(("a" * 80, None)), 80) == 1
    assert rows_of(line(("a" * 81, None)), 80) == 2
    assert rows_of([], 80) == 1


def test_keeping_the_full_rows_of_a_long_line_leaves_the_rest_live() -> None:
    """A line three rows tall keeps its first two for good: the region goes on with the
    rest of it, from the first column of its last row, and a piece costs its characters."""
    term = Screen()
    region = LiveRegion(term.console)
    text = "".join(chr(97 + i % 26) for i in range(WIDTH * 2 + 7))
    region.draw([line(("top", None)), line((text, None))])
    region.keep_top(1, WIDTH * 2)
    region.draw([line((text[WIDTH * 2 :] + "XYZ", None))])
    assert term.pump().endswith(f"{SYNC_ON}XYZ{SYNC_OFF}")
    region.draw([line((text[WIDTH * 2 :] + "XY", None)), line(("next", None))])
    term.pump()
    assert expected([line(("top", None)), line((text[:WIDTH], None))])[:2] == term.rows()[:2]
    assert (
        term.rows()[2:5]
        == expected(
            [
                line((text[WIDTH : WIDTH * 2], None)),
                line((text[WIDTH * 2 :] + "XY", None)),
                line(("next", None)),
            ]
        )[:3]
    )


def test_keeping_every_line_at_the_foot_of_the_screen_scrolls_a_row_in() -> None:
    """A cursor moved down from the screen's last row stays there: the next region's
    first row is scrolled in with a newline, or it is written over the last line kept."""
    term = Screen(WIDTH, 4)
    region = LiveRegion(term.console)
    region.draw([line((f"row {i}", None)) for i in range(4)])
    region.keep_top(4)
    region.draw([line(("after", None))])
    term.pump()
    assert [row for row in term.rows()] == expected(
        [line((f"row {i}", None)) for i in range(1, 4)] + [line(("after", None))], 4
    )
