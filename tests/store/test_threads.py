"""Thread keys: which stored conversation a gateway request goes on with (store layer)."""

from __future__ import annotations

from pathlib import Path

from cortan.core.images import Image
from cortan.core.messages import Message, Role
from cortan.store.db import get_store_path
from cortan.store.sessions import SessionStore
from cortan.store.threads import Thread
from tests.store.test_db import build_at_version, data_dir

__all__ = ["data_dir"]  # the fixture, shared


def test_the_key_after_an_answer_is_the_key_of_the_next_history() -> None:
    first = Thread("openai editor", [], "hi")
    turns = [Message("user", "hi"), Message("assistant", "Hello!")]
    second = Thread("openai editor", turns, "more")
    assert first.after("Hello!") == second.key()
    assert first.after("Hello") != second.key() and first.key() != second.key()


def test_an_image_counts_by_its_bytes_attached_or_in_the_history() -> None:
    png = Image("image/png", b"\x89PNG\r\n\x1a\n1")
    first = Thread("c", [], "what is it?", [png.data])
    seen = [Message("user", "what is it?", (png,)), Message("assistant", "a cat")]
    assert first.after("a cat") == Thread("c", seen, "more").key()
    other = [Message("user", "what is it?", (png._replace(data=png.data + b"2"),)), seen[1]]
    assert first.after("a cat") != Thread("c", other, "more").key()
    assert Thread("c", [], "what is it?").after("a cat") != first.after("a cat")


def test_no_two_different_conversations_share_a_key() -> None:
    # Where one field ends is part of the key: text that spells the next turn moves nothing.
    def key(client: str, *turns: tuple[Role, str]) -> bytes:
        return Thread(client, [Message(*turn) for turn in turns], "q").key()

    keys = {
        key("c", ("user", "ab"), ("assistant", "c")),
        key("c", ("user", "a"), ("assistant", "bc")),
        key("c", ("user", "a\x00assistant\x00bc")),
        key("c", ("assistant", "ab"), ("assistant", "c")),
        key("d", ("user", "ab"), ("assistant", "c")),
        key("c"),
    }
    assert len(keys) == 6
    # A lone surrogate (valid JSON) hashes rather than raise.
    assert Thread("\ud800", [Message("user", "\udfff")], "q").after("\ud800") != b""


def test_a_thread_is_taken_once_and_any_other_message_clears_it(data_dir: Path) -> None:
    with SessionStore.open(data_dir) as store:
        one, two = store.create(client="c").id, store.create(client="c").id
        store.add_message(one, "assistant", "a", thread=b"k" * 32)
        store.add_message(two, "assistant", "a", thread=b"k" * 32)
        assert store.take_thread(b"k" * 32, "now") == two  # the newest first
        assert store.take_thread(b"k" * 32, None) == one
        assert store.take_thread(b"k" * 32, None) is None  # each claimed once
        taken = store.get(two)
        assert taken is not None and taken.system == "now"  # the request's, which may change
        store.add_message(one, "assistant", "b", thread=b"j" * 32)
        store.add_message(one, "user", "from the terminal")
        assert store.take_thread(b"j" * 32, None) is None
        # Deleting a message (logs rm, /retry) takes the key away too.
        answer = store.add_message(two, "assistant", "c", thread=b"i" * 32)
        store.remove_messages([answer])
        assert store.take_thread(b"i" * 32, None) is None


def test_a_version_9_store_gains_thread_keys_and_request_ids(data_dir: Path) -> None:
    conn = build_at_version(get_store_path(data_dir), 9)
    conn.execute(
        "INSERT INTO conversations (id, created, updated, client, request_id)"
        " VALUES (1, 10, 20, 'openai x', 'job-1')"
    )
    conn.execute(
        "INSERT INTO messages (conversation_id, role, content, created) VALUES (1, 'user', 'q', 11)"
    )
    conn.close()
    with SessionStore.open(data_dir) as store:
        found = store.find("job-1")  # a request id kept on the conversation only, as before
        assert found is not None and found.id == 1
        assert [m.request_id for m in store.messages(1)] == [None]
        asked = store.add_message(1, "user", "again", request_id="job-2")
        assert [m.id for m in store.messages(1) if m.request_id == "job-2"] == [asked]
        again = store.find("job-2")
        assert again is not None and again.id == 1
