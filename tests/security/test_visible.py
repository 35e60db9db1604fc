"""make_visible: what a person approves is what they see (issues 15 and 17)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cortan.core.text import make_visible


def test_plain_text_is_the_same_object() -> None:
    text = "ls -la ~/src | grep 'é' && echo 日本"
    assert make_visible(text) is text


def test_escape_sequences_become_pictures() -> None:
    assert make_visible("echo \x1b[2Jhi\r") == "echo \u241b[2Jhi\u240d"


def test_invisible_characters_are_named() -> None:
    shown = make_visible("rm\u200b -rf\u2060 x\u00ad\u202e\ufeff\U000e0041\u2028")
    assert shown == ("rm<U+200B> -rf<U+2060> x<U+00AD><U+202E><U+FEFF><U+E0041><U+2028>")


def test_lone_surrogates_become_replacement_characters() -> None:
    assert make_visible("a\udc9bb") == "a\ufffdb"


@given(st.text(alphabet=st.characters(codec=None)))
def test_nothing_invisible_survives(text: str) -> None:
    shown = make_visible(text)
    shown.encode("utf-8")  # no lone surrogate left
    assert not any(
        (ord(c) < 0x20 and c not in "\t\n")
        or 0x7F <= ord(c) <= 0x9F
        or c in "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u2028\u2029"
        or 0xE0000 <= ord(c) <= 0xE007F
        for c in shown
    )
