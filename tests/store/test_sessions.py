"""SessionStore: conversations, names, messages, deletion, history selection."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.core.errors import UsageError
from cortan.store import SessionStore, StoredMessage
from cortan.store.records import select_history


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    ticks = itertools.count(1000)
    with SessionStore.open(tmp_path / "data", clock=lambda: float(next(ticks))) as opened:
        yield opened


def test_a_batch_commits_its_writes_together_or_not_at_all(
    store: SessionStore, tmp_path: Path
) -> None:
    with store.batch():
        first = store.create("first")
        store.add_message(first.id, "user", "hi")
        with SessionStore.open(tmp_path / "data") as other:  # another process's view
            assert other.list_conversations() == []  # nothing is visible before the end

    def fail_half_way() -> None:
        with store.batch():
            second = store.create("second")
            store.add_message(second.id, "user", "lost")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_half_way()
    assert [c.name for c in store.list_conversations()] == ["first"]
    assert [m.content for m in store.messages(first.id)] == ["hi"]
    store.add_message(first.id, "assistant", "hello")  # the store is usable after a rollback
    assert len(store.messages(first.id)) == 2


def test_create_and_find_by_name_or_id(store: SessionStore) -> None:
    work = store.create("work", model="ollama:llama3.2", system="be brief")
    unnamed = store.create()
    assert store.get_by_name("work") == work
    assert store.find("work") == work
    assert store.find(str(work.id)) == work
    assert store.find(f"#{unnamed.id}") == unnamed
    assert store.find("nope") is None
    assert store.find("999") is None
    assert (work.model, work.system, unnamed.name) == ("ollama:llama3.2", "be brief", None)


@pytest.mark.parametrize("name", ["", "   ", "12", "#12", "a\nb", "x" * 101])
def test_bad_names_are_refused(store: SessionStore, name: str) -> None:
    with pytest.raises(UsageError):
        store.create(name)


def test_names_are_unique(store: SessionStore) -> None:
    store.create("work")
    with pytest.raises(UsageError, match="already exists"):
        store.create("work")
    other = store.create("play")
    with pytest.raises(UsageError, match="already exists"):
        store.rename(other.id, "work")
    store.rename(other.id, "play")  # its own name again is fine
    store.rename(other.id, "games")
    assert store.find("games") is not None
    assert store.find("play") is None
    assert len(store.list_conversations()) == 2  # the refused create left nothing behind


def test_messages_in_order_with_metadata(store: SessionStore) -> None:
    conversation = store.create()
    store.add_message(conversation.id, "user", "hi")
    store.add_message(
        conversation.id, "assistant", "hello", model="llama3.2", provider="ollama",
        prompt_tokens=3, completion_tokens=1, duration=0.5,
    )  # fmt: skip
    user, answer = store.messages(conversation.id)
    assert (user.role, user.content, user.status, user.model) == ("user", "hi", "complete", None)
    assert (answer.prompt_tokens, answer.completion_tokens, answer.duration) == (3, 1, 0.5)
    assert answer.created > user.created


def test_an_answer_sets_the_conversation_model_and_updated_time(store: SessionStore) -> None:
    conversation = store.create(model="fast")
    store.add_message(conversation.id, "user", "hi")
    store.add_message(conversation.id, "assistant", "yo", model="llama3.2", provider="ollama")
    after = store.get(conversation.id)
    assert after is not None
    assert after.model == "ollama:llama3.2"
    assert after.updated > conversation.updated
    assert (after.message_count, after.title) == (2, "hi")


def test_latest_is_the_most_recently_written(store: SessionStore) -> None:
    first, second = store.create(), store.create()
    assert store.latest() == second
    store.add_message(first.id, "user", "back to the first")
    latest = store.latest()
    assert latest is not None
    assert latest.id == first.id
    assert [c.id for c in store.list_conversations()] == [first.id, second.id]
    assert [c.id for c in store.list_conversations(limit=1)] == [first.id]


def test_delete_removes_messages_and_their_search_entries(store: SessionStore) -> None:
    keep, drop = store.create(), store.create("drop")
    store.add_message(keep.id, "user", "walrus kept")
    store.add_message(drop.id, "user", "walrus dropped")
    assert store.delete(drop.id)
    assert not store.delete(drop.id)
    assert store.messages(drop.id) == []
    assert [e.content for e in store.search("walrus")] == ["walrus kept"]
    assert store.stats().messages == 1


def test_delete_messages_takes_only_the_conversation_named(store: SessionStore) -> None:
    """What /retry replaced goes, search entries included; another conversation's ids stay."""
    mine, other = store.create(), store.create()
    question = store.add_message(mine.id, "user", "walrus question")
    answer = store.add_message(mine.id, "assistant", "walrus answer")
    theirs = store.add_message(other.id, "user", "walrus elsewhere")
    assert store.delete_messages(mine.id, [question, answer, theirs]) == 2
    assert store.messages(mine.id) == []
    assert [e.content for e in store.search("walrus")] == ["walrus elsewhere"]
    assert store.delete_messages(mine.id, []) == 0


def test_recent_messages_newest_first_across_conversations(store: SessionStore) -> None:
    a, b = store.create("a"), store.create()
    store.add_message(a.id, "user", "one")
    store.add_message(b.id, "user", "two")
    store.add_message(a.id, "user", "three")
    entries = store.recent_messages(2)
    assert [(e.content, e.conversation_label) for e in entries] == [
        ("three", f"#{a.id} a"),
        ("two", f"#{b.id}"),
    ]


def test_update_model_and_system(store: SessionStore) -> None:
    conversation = store.create(system="old")
    store.update(conversation.id, model="openai:gpt-4o", system=None)
    after = store.get(conversation.id)
    assert after is not None
    assert (after.model, after.system) == ("openai:gpt-4o", None)


def message(i: int, role: str, status: str = "complete", content: str = "x") -> StoredMessage:
    return StoredMessage(i, 1, role, content, float(i), status)  # type: ignore[arg-type]


def test_history_leaves_out_failed_and_unanswered_turns() -> None:
    messages = [
        message(1, "user", content="ok question"),
        message(2, "assistant", content="ok answer"),
        message(3, "user", content="failed question"),
        message(4, "assistant", "failed", content="half"),
        message(5, "user", content="interrupted question"),
        message(6, "assistant", "interrupted", content="partial"),
        message(7, "user", content="cut before any text"),
        message(8, "assistant", "interrupted", content=""),
        message(9, "user", content="killed: never answered"),
    ]
    kept = [m.content for m in select_history(messages)]
    assert kept == [
        "ok question",
        "ok answer",
        "interrupted question",
        "partial",
        "cut before any text",
    ]


def test_latest_is_the_conversation_last_used_even_when_the_clock_says_otherwise(
    tmp_path: Path,
) -> None:
    """`-c` continues where the newest message went, not the conversation made last
    (issue 21): with one timestamp for everything, or a clock that stepped back."""
    with SessionStore.open(tmp_path / "data", clock=lambda: 1000.0) as store:
        used, created_later = store.create(), store.create()
        store.add_message(created_later.id, "user", "older")
        store.add_message(used.id, "user", "newest")
        found = store.latest()
        assert found is not None
        assert found.id == used.id
        empty = store.create()  # made after every message, never used
        assert store.latest() == store.get(used.id)
        assert empty.id != used.id


def test_fork_copies_messages_metadata_and_images_and_leaves_the_original(
    store: SessionStore,
) -> None:
    from cortan.core.images import Image

    original = store.create("work", model="ollama:llama3.2", system="be brief")
    picture = Image("image/png", b"\x89PNG fake")
    asked = store.add_message(original.id, "user", "look", images=[picture])
    answered = store.add_message(
        original.id, "assistant", "a cat", model="llama3.2", provider="ollama",
        prompt_tokens=5, completion_tokens=2, duration=0.25, thinking="hmm",
    )  # fmt: skip
    forked = store.fork(original.id, "work-2")
    copy = forked.conversation
    assert (copy.name, copy.model, copy.system, copy.message_count) == (
        "work-2", "ollama:llama3.2", "be brief", 2,
    )  # fmt: skip
    assert copy.id != original.id
    assert set(forked.mapping) == {asked, answered}
    before, after = store.messages(original.id), store.messages(copy.id)
    strip = [(m.role, m.content, m.status, m.model, m.provider, m.prompt_tokens, m.thinking,
              m.images) for m in before]  # fmt: skip
    assert strip == [(m.role, m.content, m.status, m.model, m.provider, m.prompt_tokens,
                      m.thinking, m.images) for m in after]  # fmt: skip
    store.add_message(copy.id, "user", "only in the fork")
    assert len(store.messages(original.id)) == 2
    assert store.delete(original.id)
    assert store.messages(copy.id)[0].images == (picture,)  # the shared image stays


def test_fork_of_a_missing_conversation_or_to_a_taken_name_is_refused(
    store: SessionStore,
) -> None:
    taken = store.create("taken")
    with pytest.raises(UsageError, match="no stored conversation #999"):
        store.fork(999)
    with pytest.raises(UsageError, match="already exists"):
        store.fork(taken.id, "taken")
    assert store.count_conversations() == 1


def test_remove_messages_by_id_reports_what_was_there(store: SessionStore) -> None:
    kept, emptied = store.create(), store.create()
    question = store.add_message(kept.id, "user", "walrus question")
    answer = store.add_message(kept.id, "assistant", "walrus answer")
    alone = store.add_message(emptied.id, "user", "walrus alone")
    assert store.remove_messages([answer, alone, 12345]) == [answer, alone]
    assert [m.id for m in store.messages(kept.id)] == [question]
    assert store.get(emptied.id) is None  # nothing left in it: it goes too
    assert [e.content for e in store.search("walrus")] == ["walrus question"]
    assert store.remove_messages([]) == []


def test_delete_all_empties_the_store(store: SessionStore) -> None:
    for _ in range(3):
        conversation = store.create()
        store.add_message(conversation.id, "user", "walrus")
    assert store.delete_all() == 3
    assert store.list_conversations() == []
    assert store.recent_messages() == []
    assert store.search("walrus") == []
    assert store.delete_all() == 0
