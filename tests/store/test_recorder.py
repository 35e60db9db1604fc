"""The recorder on a real App and bus, against the fake Ollama: what is stored, and when."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cortan.app import App
from cortan.config.load import load_settings
from cortan.core.events import ChatCancelled, ChatFailed, ChatStarted, TokenDelta
from cortan.core.requests import ChatRequest
from cortan.store import SessionStore
from tests.servers import FakeOllama, Reply


@pytest.fixture
async def app(ollama_env: FakeOllama) -> AsyncIterator[App]:
    built = App.build(load_settings(retry={"attempts": 1}))
    yield built
    await built.aclose()


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore.open(tmp_path / "data")


def request(app: App, prompt: str, **fields: object) -> ChatRequest:
    return ChatRequest(app.next_id(), prompt, **fields)  # type: ignore[arg-type]


async def test_exchange_is_stored_in_a_new_conversation(app: App, store: SessionStore) -> None:
    recorder = app.attach_store(store)
    await app.ask(request(app, "hi", system="be brief"))
    assert recorder.conversation_id is not None
    conversation = store.get(recorder.conversation_id)
    assert conversation is not None
    assert (conversation.system, conversation.model) == ("be brief", "ollama:llama3.2:latest")
    user, answer = store.messages(conversation.id)
    assert (user.role, user.content) == ("user", "hi")
    assert (answer.content, answer.status, answer.provider) == (
        "Hello, world!",
        "complete",
        "ollama",
    )
    assert (answer.prompt_tokens, answer.completion_tokens) == (7, 4)
    assert answer.duration is not None
    assert answer.duration > 0


async def test_user_message_is_committed_before_the_request_starts(
    app: App, store: SessionStore, tmp_path: Path
) -> None:
    app.attach_store(store)
    seen: list[list[str]] = []

    def look(event: ChatStarted) -> None:
        with SessionStore.open(tmp_path / "data") as other:  # another connection: committed?
            seen.append([e.content for e in other.recent_messages()])

    app.bus.subscribe(ChatStarted, look)
    await app.ask(request(app, "remember me"))
    assert seen == [["remember me"]]


async def test_failed_answer_keeps_partial_text(
    app: App, store: SessionStore, ollama_env: FakeOllama
) -> None:
    recorder = app.attach_store(store)
    ollama_env.queue(Reply(pieces=["so far"], fault="error_in_stream", error="out of memory"))
    await app.ask(request(app, "hi"))
    assert recorder.conversation_id is not None
    answer = store.messages(recorder.conversation_id)[-1]
    assert (answer.content, answer.status) == ("so far", "failed")


async def test_unknown_model_is_a_failed_empty_answer(app: App, store: SessionStore) -> None:
    recorder = app.attach_store(store)
    await app.ask(request(app, "hi", model="ollama:nope"))
    assert recorder.conversation_id is not None
    _user, answer = store.messages(recorder.conversation_id)
    assert (answer.content, answer.status, answer.model) == ("", "failed", "nope")
    conversation = store.get(recorder.conversation_id)
    assert conversation is not None
    assert conversation.model == "ollama:nope"


async def test_cancelled_answer_is_interrupted_with_partial_text(
    app: App, store: SessionStore, ollama_env: FakeOllama
) -> None:
    recorder = app.attach_store(store)
    ollama_env.queue(Reply(pieces=["so far", "x"], fault="never_end", fault_after=1))
    first_piece = asyncio.Event()
    app.bus.subscribe(TokenDelta, lambda event: first_piece.set())
    task = asyncio.create_task(app.ask(request(app, "hi")))
    await asyncio.wait_for(first_piece.wait(), 10)
    task.cancel()
    ended = await task  # the ending comes back, Ctrl-C included
    assert isinstance(ended, ChatCancelled)
    assert ended.content == "so far"
    assert recorder.conversation_id is not None
    answer = store.messages(recorder.conversation_id)[-1]
    assert (answer.content, answer.status) == ("so far", "interrupted")


async def test_rejected_input_stores_nothing(app: App, store: SessionStore) -> None:
    recorder = app.attach_store(store)
    recorder.start_new("never-made")
    await app.ask(request(app, "   "))
    assert store.list_conversations() == []
    assert recorder.conversation_id is None


async def test_continue_appends_and_new_names_the_next(app: App, store: SessionStore) -> None:
    earlier = store.create("earlier", system="terse")
    recorder = app.attach_store(store)
    recorder.continue_conversation(earlier.id)
    await app.ask(request(app, "one", system="terse"))
    await app.ask(request(app, "two", system="verbose"))
    recorder.start_new("fresh")
    await app.ask(request(app, "three"))
    assert [m.content for m in store.messages(earlier.id) if m.role == "user"] == ["one", "two"]
    after = store.get(earlier.id)
    assert after is not None
    assert after.system == "verbose"
    fresh = store.get_by_name("fresh")
    assert fresh is not None
    assert fresh.id == recorder.conversation_id
    assert [m.content for m in store.messages(fresh.id)] == ["three", "Hello, world!"]


async def test_a_store_that_cannot_save_the_question_still_answers_and_says_so(
    app: App, store: SessionStore, ollama_env: FakeOllama
) -> None:
    app.attach_store(store)
    store.close()  # every write from now on fails
    ended = await app.ask(request(app, "hi"))
    assert isinstance(ended, ChatFailed)
    assert (ended.kind, ended.exit_code) == ("store", 1)
    assert ended.content == "Hello, world!"  # the answer still arrives, whole
    assert "not saved" in ended.message
    assert str(store.path) in ended.message
    assert "--no-log" in ended.message
    assert len(ollama_env.chat_requests) == 1


async def test_a_store_that_cannot_save_the_answer_fails_the_request_with_the_answer(
    app: App, store: SessionStore, ollama_env: FakeOllama
) -> None:
    app.attach_store(store)
    shown: list[str] = []
    app.bus.subscribe(TokenDelta, lambda e: shown.append(e.text))
    app.bus.subscribe(ChatStarted, lambda e: store.close())  # the disk goes mid-answer
    ended = await app.ask(request(app, "hi"))
    assert isinstance(ended, ChatFailed)
    assert ended.content == "Hello, world!" == "".join(shown)  # the answer still arrives
    assert (ended.kind, ended.exit_code) == ("store", 1)
    assert ended.message.startswith("the answer was not saved: ")
    assert str(store.path) in ended.message


async def test_a_named_session_started_elsewhere_is_joined(
    app: App, store: SessionStore, tmp_path: Path
) -> None:
    recorder = app.attach_store(store)
    recorder.start_new("work")
    with SessionStore.open(tmp_path / "data") as other_terminal:
        elsewhere = other_terminal.create("work")
    await app.ask(request(app, "hi"))
    assert recorder.conversation_id == elsewhere.id
    assert len(store.messages(elsewhere.id)) == 2


async def test_a_conversation_deleted_meanwhile_is_started_anew(
    app: App, store: SessionStore
) -> None:
    recorder = app.attach_store(store)
    gone = store.create()
    recorder.continue_conversation(gone.id)
    store.delete(gone.id)
    await app.ask(request(app, "hi"))
    assert recorder.conversation_id not in (None, gone.id)
    assert [c.message_count for c in store.list_conversations()] == [2]


async def test_last_exchange_is_the_last_kept_and_discard_takes_it_back(
    app: App, store: SessionStore, ollama_env: FakeOllama
) -> None:
    """A failed answer is no exchange to replace; a kept one is, until it is discarded."""
    recorder = app.attach_store(store)
    ollama_env.queue(Reply(pieces=["kept"]), Reply(status=400, error="no"))
    await app.ask(request(app, "one"))
    kept = recorder.last_exchange
    assert kept is not None and len(kept.message_ids) == 2
    await app.ask(request(app, "two"))
    assert recorder.last_exchange == kept  # the failure did not replace it
    recorder.discard(kept)
    assert recorder.last_exchange is None
    assert recorder.conversation_id is not None
    remaining = store.messages(recorder.conversation_id)
    assert [(m.content, m.status) for m in remaining] == [("two", "complete"), ("", "failed")]


async def test_fork_continues_in_a_copy_and_retry_stays_in_it(
    app: App, store: SessionStore
) -> None:
    from cortan.core.errors import UsageError

    recorder = app.attach_store(store)
    with pytest.raises(UsageError, match="nothing to fork"):
        recorder.fork()
    await app.ask(request(app, "first"))
    original = recorder.conversation_id
    assert original is not None
    forked = recorder.fork("branch")
    assert recorder.conversation_id == forked.id != original
    assert recorder.last_exchange is not None
    assert recorder.last_exchange.conversation_id == forked.id
    recorder.discard(recorder.last_exchange)  # a /retry right after the fork
    assert len(store.messages(original)) == 2  # the original is untouched
    assert store.messages(forked.id) == []
    await app.ask(request(app, "second"))
    assert [m.content for m in store.messages(forked.id)] == ["second", "Hello, world!"]
