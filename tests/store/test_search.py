"""Full-text search: whatever a user types is a query, never an FTS5 syntax error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortan.store import SessionStore
from cortan.store.search import make_match_query


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionStore]:
    with SessionStore.open(tmp_path_factory.mktemp("search")) as opened:
        conversation = opened.create("s")
        for text in (
            "deploy the server with docker",
            'he said "NEAR(x y)" and left',
            "a - b * c: the minus and star",
            "café crème brûlée",
            "deployment notes",
            "AND OR NOT are words too",
        ):
            opened.add_message(conversation.id, "user", text)
        yield opened


def found(store: SessionStore, text: str) -> list[str]:
    return [entry.content for entry in store.search(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker", ["deploy the server with docker"]),
        ("DOCKER server", ["deploy the server with docker"]),
        ("deploy*", ["deployment notes", "deploy the server with docker"]),
        ("cafe", ["café crème brûlée"]),
        ('"NEAR(x', ['he said "NEAR(x y)" and left']),
        ("NEAR(", ['he said "NEAR(x y)" and left']),
        ("minus -", ["a - b * c: the minus and star"]),
        (
            "AND",
            [
                "AND OR NOT are words too",
                "a - b * c: the minus and star",
                'he said "NEAR(x y)" and left',
            ],
        ),
        ("NOT OR", ["AND OR NOT are words too"]),
    ],
)
def test_words_are_matched_literally(store: SessionStore, text: str, expected: list[str]) -> None:
    assert found(store, text) == expected


@pytest.mark.parametrize("text", ['"', "*", "-", "NEAR(", "(", ")", "^", ":", '""', "* * *", ""])
def test_hostile_text_never_fails(store: SessionStore, text: str) -> None:
    store.search(text)  # no exception is the point; punctuation alone matches nothing
    assert make_match_query(text) is None or text.strip('*"') != ""


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
def test_any_text_is_a_valid_query(store: SessionStore, text: str) -> None:
    store.search(text)


def test_query_shape() -> None:
    assert make_match_query('say "hi" now*') == '"say" """hi""" "now"*'
    assert make_match_query("  ") is None
    assert make_match_query("- * ^") is None
    assert make_match_query("a\x00b") == '"a b"'  # FTS5 stops reading at a NUL
