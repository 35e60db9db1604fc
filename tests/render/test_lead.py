"""Tests for cortan.render.lead: which first words of an answer go out plain before rich
is loaded, and on which terminals (issue 21, the first visible byte)."""

from __future__ import annotations

import io

import pytest

from cortan.render.lead import Lead, terminal_width, writes_live
from tests.render.tty import Tty


def offered(pieces: list[str], width: int = 60) -> tuple[list[bool], str]:
    file = io.StringIO()
    lead = Lead(file, width)
    answers = [lead.offer(piece) for piece in pieces]
    assert file.getvalue() == lead.text
    return answers, file.getvalue()


def test_plain_words_go_out_as_they_come() -> None:
    assert offered(["Sure", ", here", ' is what 2/3 (66%) means: it\'s "x"-like!']) == (
        [True, True, True],
        'Sure, here is what 2/3 (66%) means: it\'s "x"-like!',
    )


def test_letters_of_other_scripts_one_cell_wide_are_plain() -> None:
    assert offered(["Ünïcödé Ωμέγα привет"]) == ([True], "Ünïcödé Ωμέγα привет")


@pytest.mark.parametrize(
    "second",
    [
        "\n",  # a next line may make the first a heading ("===") or a table's header
        " **bold",
        " `code",
        " _em",
        " [link",
        " <b>",
        " &amp;",
        " a | b",
        " #tag",
        " \\",
        " ~~x",
        " a=b",
        " a+b",
        "\x1b[2J",
        "\u0301",  # a combining mark: not a cell of its own
        " 漢字",  # two cells each
        " שלום",  # right to left
        "\t",
    ],
)
def test_the_lead_ends_at_the_first_piece_markdown_might_draw_otherwise(second: str) -> None:
    answers, written = offered(["Hello", second, " more"])
    assert answers == [True, False, False]  # and once ended, it stays ended
    assert written == "Hello"


@pytest.mark.parametrize("first", [" Hello", "1. item", "- item", "# Title", "> quote", "```"])
def test_an_answer_that_starts_otherwise_than_with_a_letter_never_leads(first: str) -> None:
    assert offered([first]) == ([False], "")


def test_the_lead_never_reaches_the_last_column() -> None:
    answers, written = offered(["a" * 50, "b" * 9, "c"], width=60)
    assert answers == [True, True, False]
    assert written == "a" * 50 + "b" * 9


def test_empty_pieces_keep_the_lead_open() -> None:
    assert offered(["", "Hi", ""]) == ([True, True, True], "Hi")


def test_a_lead_is_live_only_on_an_interactive_terminal(tty: Tty) -> None:
    term = {"TERM": "xterm-256color"}
    assert writes_live(tty.file, term)
    assert not writes_live(io.StringIO(), term)
    for dumb in ("dumb", "unknown", ""):
        assert not writes_live(tty.file, {"TERM": dumb})
    for override in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        assert not writes_live(tty.file, {**term, override: "1"})  # rich's call, not guessed


def test_the_width_is_the_terminals_or_columns_when_narrower(tty: Tty) -> None:
    assert terminal_width(tty.file, {}) == 60
    assert terminal_width(tty.file, {"COLUMNS": "40"}) == 40
    assert terminal_width(tty.file, {"COLUMNS": "200"}) == 60
    assert terminal_width(io.StringIO(), {}) == 0  # not a terminal: nothing may lead
