"""`cortan logs rm --older-than AGE`: retention by last activity, through the real CLI.

Conversations are written with the store's own API, each with a clock set to the day
it was last used, so the store holds one of each age the tests ask about.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from cortan.core.images import Image
from cortan.store import SessionStore, get_store_path
from tests.conftest import CortanRunner, assert_one_sentence

DAY = 86400.0
IMAGE = Image("image/png", b"\x89PNG old screenshot")


@pytest.fixture
def data_dir(isolated_env: Path) -> Path:
    return isolated_env / "data"


def converse(data_dir: Path, days_ago: float, words: str, *, image: bool = False) -> int:
    """A question and its answer, stored as if ``days_ago`` days ago; the conversation id."""
    at = time.time() - days_ago * DAY
    with SessionStore.open(data_dir, clock=lambda: at) as store:
        conversation = store.create()
        store.add_message(conversation.id, "user", words, images=[IMAGE] if image else ())
        answer = store.add_message(conversation.id, "assistant", f"answer {words}")
    with sqlite3.connect(get_store_path(data_dir)) as conn:  # a tool call hangs off the answer
        conn.execute(
            "INSERT INTO tool_calls (message_id, position, call_id, name, arguments, status,"
            " output) VALUES (?, 0, 'c1', 'read_file', '{}', 'ok', 'text')",
            (answer,),
        )
    return conversation.id


def add_turn(data_dir: Path, conversation_id: int, days_ago: float, words: str) -> None:
    at = time.time() - days_ago * DAY
    with SessionStore.open(data_dir, clock=lambda: at) as store:
        store.add_message(conversation_id, "user", words)


@pytest.fixture
def ages(data_dir: Path) -> dict[str, int]:
    """Conversations last used 200, 100 and 10 days ago, and one begun 300 days ago that
    is still in use (a turn yesterday)."""
    found = {
        "200": converse(data_dir, 200, "ancient pelican", image=True),
        "100": converse(data_dir, 100, "elderly pelican"),
        "10": converse(data_dir, 10, "recent pelican"),
        "in use": converse(data_dir, 300, "founding walrus"),
    }
    add_turn(data_dir, found["in use"], 1, "walrus again")
    return found


def counts(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(get_store_path(data_dir)) as conn:
        tables = ("conversations", "messages", "tool_calls", "message_images", "blobs")
        found = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        found["indexed pelicans"] = conn.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'pelican'"
        ).fetchone()[0]
    return found


def test_older_than_removes_conversations_idle_past_the_age_with_all_they_hold(
    cortan: type[CortanRunner], ages: dict[str, int], data_dir: Path
) -> None:
    result = cortan.run("logs", "rm", "--older-than", "90d", "--yes")
    assert result.code == 0, result.stderr
    assert "removed 2 conversations (4 messages) last active before" in result.stderr
    with SessionStore.open(data_dir) as store:
        kept = {c.id for c in store.list_conversations()}
        assert kept == {ages["10"], ages["in use"]}
        # a conversation still in use keeps its old turns
        assert [m.content for m in store.messages(ages["in use"])] == [
            "founding walrus",
            "answer founding walrus",
            "walrus again",
        ]
        assert [m.content for m in store.search("pelican")] == [
            "answer recent pelican",
            "recent pelican",
        ]
    assert counts(data_dir) == {
        "conversations": 2,
        "messages": 5,
        "tool_calls": 2,  # theirs went with their answers
        "message_images": 0,
        "blobs": 0,  # the image no message shows any more
        "indexed pelicans": 2,  # the full-text index let the removed ones go
    }


def test_older_than_in_hours_minutes_and_weeks(
    cortan: type[CortanRunner], ages: dict[str, int], data_dir: Path
) -> None:
    for age, left in (("28w", 3), ("2300h", 2), ("12960m", 1)):  # 196, 96, 9 days
        result = cortan.run("logs", "rm", "--older-than", age, "-y")
        assert result.code == 0, result.stderr
        assert counts(data_dir)["conversations"] == left, age


def test_dry_run_says_what_would_go_and_removes_nothing(
    cortan: type[CortanRunner], ages: dict[str, int], data_dir: Path
) -> None:
    before = counts(data_dir)
    result = cortan.run("logs", "rm", "--older-than", "90d", "--dry-run", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["conversations"], report["messages"], report["dry_run"]) == (2, 4, True)
    assert "would remove 2 conversations (4 messages)" in result.stderr
    assert counts(data_dir) == before


def test_older_than_json_reports_what_went_and_the_store_size(
    cortan: type[CortanRunner], ages: dict[str, int]
) -> None:
    result = cortan.run("logs", "rm", "--older-than", "90d", "--yes", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["conversations"], report["messages"], report["dry_run"]) == (2, 4, False)
    assert report["bytes_after"] <= report["bytes_before"]
    assert report["before"].endswith("+00:00")


def test_older_than_in_a_script_needs_yes_as_all_does(
    cortan: type[CortanRunner], ages: dict[str, int], data_dir: Path
) -> None:
    before = counts(data_dir)
    result = cortan.run("logs", "rm", "--older-than", "90d")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "--yes" in result.stderr and "2 conversations" in result.stderr
    assert counts(data_dir) == before


def test_nothing_that_old_is_a_success_for_a_daily_job(
    cortan: type[CortanRunner], ages: dict[str, int], data_dir: Path
) -> None:
    result = cortan.run("logs", "rm", "--older-than", "52w")  # no --yes: nothing to ask
    assert result.code == 0, result.stderr
    assert "nothing to remove" in result.stderr
    assert counts(data_dir)["conversations"] == 4


def test_older_than_with_no_store_creates_none(cortan: type[CortanRunner], data_dir: Path) -> None:
    result = cortan.run("logs", "rm", "--older-than", "90d", "--yes")
    assert result.code == 0, result.stderr
    assert "nothing to remove" in result.stderr
    assert not get_store_path(data_dir).exists()


@pytest.mark.parametrize(
    "age", ["-1d", "1e9d", "d", "99999999999w", "", "90", "1.5d", "0d", "90D", "9" * 5000 + "d"]
)
def test_hostile_ages_are_one_sentence_and_exit_2(
    cortan: type[CortanRunner], ages: dict[str, int], data_dir: Path, age: str
) -> None:
    result = cortan.run("logs", "rm", "--older-than", age, "--yes")
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "age" in result.stderr and "Traceback" not in result.stderr
    if age not in ("0d", "99999999999w"):
        assert "90d, 12h, 30m or 2w (m minutes, h hours, d days, w weeks)" in result.stderr
    assert counts(data_dir)["conversations"] == 4


@pytest.mark.parametrize(
    "args",
    [
        ("--older-than", "90d", "--all"),
        ("--older-than", "90d", "--session", "1"),
        ("--all", "--dry-run"),
        ("1", "--json"),
    ],
)
def test_older_than_is_one_way_among_the_others(
    cortan: type[CortanRunner], ages: dict[str, int], data_dir: Path, args: tuple[str, ...]
) -> None:
    result = cortan.run("logs", "rm", *args, "--yes")
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "--older-than" in result.stderr and "no such option" not in result.stderr
    assert counts(data_dir)["conversations"] == 4
