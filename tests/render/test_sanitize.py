"""Tests for cortan.render.sanitize: no escape sequence or control survives, text does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cortan.render.sanitize import sanitize

# The dangerous set, written out independently of the module under test.
C0 = {chr(c) for c in range(0x20)} - {"\n", "\t"}
C1 = {chr(c) for c in range(0x80, 0xA0)}
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
DANGEROUS = frozenset(C0 | C1 | BIDI | {"\x7f"})

# Text that leans on the interesting characters, so that examples hit them often.
INTERESTING = st.sampled_from(sorted(DANGEROUS | {"\n", "\r\n", "[", "]", "\\", "é", "👍"}))
TEXT = st.one_of(st.text(), st.lists(st.one_of(INTERESTING, st.text(max_size=3))).map("".join))


def has_dangerous(text: str) -> bool:
    return any(char in DANGEROUS for char in text)


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param("\x1b[2J\x1b[H", id="csi-clear-screen"),
        pytest.param("\x1b[10A\x1b[2K", id="csi-cursor-up-erase"),
        pytest.param("\x1b]0;pwned\x07", id="osc-title-bel"),
        pytest.param("\x1b]0;pwned\x1b\\", id="osc-title-st"),
        pytest.param("\x1b]8;;http://evil\x1b\\text\x1b]8;;\x1b\\", id="osc8-hyperlink"),
        pytest.param("\x1b]52;c;cm0gLXJmIH4=\x07", id="osc52-clipboard"),
        pytest.param("\x1bP1$r0m\x1b\\", id="dcs"),
        pytest.param("\x1b_apc payload\x1b\\", id="apc"),
        pytest.param("\x1b^pm payload\x1b\\", id="pm"),
        pytest.param("\x1bXsos payload\x1b\\", id="sos"),
        pytest.param("\x1bc", id="bare-esc-reset"),
        pytest.param("\x9b2J", id="c1-8bit-csi"),
        pytest.param("\x9d0;title\x9c", id="c1-8bit-osc"),
        pytest.param("a\x00b\x07c\x08d\x0be\x0cf\x7f", id="c0-and-del"),
        pytest.param("rm -rf ~\rls", id="carriage-return-overwrite"),
        pytest.param("user\u202eexe.txt", id="bidi-override"),
        pytest.param("\u2066x\u2069\u200e\u200f\u061c", id="bidi-isolates-marks"),
    ],
)
def test_attack_is_neutralised(attack: str) -> None:
    out = sanitize(attack)
    assert not has_dangerous(out)
    assert out != attack


def test_visible_forms() -> None:
    assert sanitize("\x1b[2J") == "␛[2J"
    assert sanitize("a\x00b\x7f") == "a␀b␡"
    assert sanitize("\x9b2J") == "<U+009B>2J"
    assert sanitize("abc\u202edef") == "abc<U+202E>def"


def test_carriage_returns() -> None:
    assert sanitize("one\r\ntwo\r\n") == "one\ntwo\n"
    assert sanitize("rm -rf ~\rls") == "rm -rf ~␍ls"
    assert sanitize("\r\r\n") == "␍\n"


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII, with punctuation: {}[]()<>!?#*`~|",
        "line one\nline two\n\ttabbed",
        "日本語のテキスト, العربية, עברית, Ελληνικά, кириллица",
        "emoji 👍🏽 family 👨\u200d👩\u200d👧 flags 🇫🇷",
        "combining e\u0301 and a\u0308, zero width joiner \u200d stays",
        "a literal backslash-x1b: \\x1b[31m is only text",
        "",
    ],
)
def test_printable_text_is_unchanged(text: str) -> None:
    assert sanitize(text) is text


@settings(max_examples=200)
@given(TEXT)
def test_output_has_no_dangerous_character(text: str) -> None:
    assert not has_dangerous(sanitize(text))


@settings(max_examples=200)
@given(st.text().filter(lambda text: not has_dangerous(text)))
def test_safe_text_is_unchanged(text: str) -> None:
    assert sanitize(text) == text


@settings(max_examples=200)
@given(TEXT)
def test_idempotent(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once


@settings(max_examples=200)
@given(TEXT, TEXT)
def test_pieces_sanitise_like_the_whole(first: str, second: str) -> None:
    # The one seam that is not per-character: "\r" | "\n" is a CRLF only when joined.
    assume(not (first.endswith("\r") and second.startswith("\n")))
    assert sanitize(first + second) == sanitize(first) + sanitize(second)


def test_importing_sanitize_does_not_load_rich_markdown() -> None:
    code = "import sys, cortan.render.sanitize; print('rich' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.stdout.strip() == "False"
