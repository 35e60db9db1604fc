"""The engine's one entry point, ``Chat.run``, called with no terminal over loopback servers.

Requests go in as a front end builds them; what is checked is what came back from
the call, what observers heard, in what order, and what the server received. The
observers here are plain functions given to the bus as the composition root gives
the view and the recorder; the store is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cortan.app import App
from cortan.config.load import load_settings
from cortan.core.errors import UsageError
from cortan.core.events import (
    ChatCancelled,
    ChatFailed,
    ChatFinished,
    ChatPrepared,
    ChatStarted,
    Notice,
    Timings,
    TokenDelta,
)
from cortan.core.messages import Message
from cortan.core.requests import Attachment, ChatRequest
from cortan.render.views import PlainView
from cortan.store import SessionStore
from tests.servers import FakeOllama, FakeOpenAI, Reply

OUTCOMES = (ChatPrepared, ChatStarted, TokenDelta, Notice, ChatFinished, ChatFailed, ChatCancelled)


@pytest.fixture
async def app(ollama_env: FakeOllama) -> AsyncIterator[App]:
    built = App.build(load_settings(retry={"attempts": 1}))
    yield built
    await built.aclose()


def heard(app: App) -> list[Any]:
    """Every outcome the bus publishes, in order."""
    seen: list[Any] = []
    for kind in OUTCOMES:
        app.bus.subscribe(kind, seen.append)
    return seen


async def test_run_directly_reads_top_to_bottom_and_returns_the_ending(
    app: App, ollama_env: FakeOllama
) -> None:
    seen = heard(app)
    request = ChatRequest(app.next_id(), "hi", (Attachment("Input from stdin", b"data\n"),))
    ended = await app.chat.run(request)  # the entry point itself: no bus command, no terminal
    assert isinstance(ended, ChatFinished)
    assert (ended.provider, ended.model, ended.content) == (
        "ollama",
        "llama3.2:latest",
        "Hello, world!",
    )
    assert ended.sent == "Input from stdin:\n```\ndata\n```\n\nhi"
    assert [type(e).__name__ for e in seen] == [
        "ChatPrepared",
        "ChatStarted",
        *["TokenDelta"] * 4,
        "ChatFinished",
    ]
    assert seen[-1] == ended  # the ending observers heard is the one returned
    (request_sent,) = ollama_env.chat_requests
    assert request_sent.json["messages"][-1]["content"] == ended.sent


async def test_the_bus_command_and_the_direct_call_end_alike(openai_env: FakeOpenAI) -> None:
    app = App.build(load_settings())
    try:
        via_bus = await app.ask(ChatRequest(app.next_id(), "hi", model="openai:gpt-4o-mini"))
        direct = await app.chat.run(ChatRequest(app.next_id(), "hi", model="openai:gpt-4o-mini"))
    finally:
        await app.aclose()
    assert isinstance(via_bus, ChatFinished) and isinstance(direct, ChatFinished)
    assert via_bus._replace(request_id=0, timings=Timings()) == direct._replace(
        request_id=0, timings=Timings()
    )
    assert len(openai_env.chat_requests) == 2


async def test_a_command_has_exactly_one_handler(app: App) -> None:
    with pytest.raises(UsageError, match="already has a handler"):
        app.bus.handle(ChatRequest, app.chat.run)


async def test_turns_left_out_are_told_before_the_messages_go(ollama_env: FakeOllama) -> None:
    app = App.build(load_settings(context={"windows": {"llama3.2": 1024}, "answer_reserve": 0}))
    try:
        seen = heard(app)
        history = tuple(
            Message(role, f"{role} {i} " + " ".join(["word"] * 100))
            for i in range(6)
            for role in ("user", "assistant")
        )
        ended = await app.chat.run(ChatRequest(app.next_id(), "now", history=history))
    finally:
        await app.aclose()
    assert isinstance(ended, ChatFinished)
    notice = next(e for e in seen if isinstance(e, Notice))
    prepared = next(e for e in seen if isinstance(e, ChatPrepared))
    assert notice.text == "2 earlier turns left out to fit the 1024-token window"
    assert seen.index(notice) < seen.index(prepared)
    assert len(prepared.messages) == 2 * 4 + 1


async def test_rejected_input_ends_failed_before_anything_is_sent(
    app: App, ollama_env: FakeOllama
) -> None:
    seen = heard(app)
    ended = await app.chat.run(ChatRequest(app.next_id(), "  "))
    assert isinstance(ended, ChatFailed)
    assert (ended.kind, ended.exit_code, ended.sent) == ("input", 1, None)
    assert seen == [ended]
    assert ollama_env.chat_requests == []


async def test_a_model_the_server_lacks_ends_failed_with_its_sentence(app: App) -> None:
    ended = await app.chat.run(ChatRequest(app.next_id(), "hi", model="ollama:mistral"))
    assert isinstance(ended, ChatFailed)
    assert (ended.kind, ended.exit_code) == ("model_not_found", 1)
    assert "run `cortan models pull mistral`" in ended.message


# -- observers whose work is the user's data ----------------------------------------------


class BrokenFile(io.StringIO):
    """A stdout that takes the first ``good`` writes, then refuses as a full disk would."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def write(self, text: str) -> int:
        if self.good <= 0:
            raise OSError(28, "No space left on device")
        self.good -= 1
        return super().write(text)


async def test_a_view_that_cannot_write_fails_the_request_and_the_partial_is_stored(
    app: App, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(Reply(pieces=["one ", "two ", "three ", "four"], delay=0.05))
    store = SessionStore.open(tmp_path / "data")
    recorder = app.attach_store(store)
    out = BrokenFile(good=2)
    app.attach_view(PlainView(out))
    ended = await app.chat.run(ChatRequest(app.next_id(), "count"))
    assert isinstance(ended, ChatFailed)
    assert ended.exit_code == 1
    assert ended.message == "could not show the answer: no space left on device"
    assert ended.content == "one two three "  # what had arrived when the view gave out
    assert out.getvalue() == "one two "
    assert recorder.conversation_id is not None
    answer = store.messages(recorder.conversation_id)[-1]
    assert (answer.content, answer.status) == ("one two three ", "failed")
    assert ollama_env.wait_disconnect(5)  # the stream was stopped, not read to its end
    store.close()


async def test_an_answer_the_terminal_cannot_encode_is_not_dropped_in_silence(
    app: App, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["caf", "é au lait"]))
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", write_through=True)
    app.attach_view(PlainView(out))
    ended = await app.chat.run(ChatRequest(app.next_id(), "coffee?"))
    assert isinstance(ended, ChatFailed)
    assert ended.message.startswith("could not show the answer: UnicodeEncodeError: ")
    assert ended.content == "café au lait"


async def test_a_failing_plain_observer_is_logged_and_the_request_goes_on(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: TokenDelta) -> None:
        raise RuntimeError("metrics are down")

    app.bus.subscribe(TokenDelta, broken)
    with caplog.at_level(logging.ERROR, logger="cortan.engine.bus"):
        ended = await app.chat.run(ChatRequest(app.next_id(), "hi"))
    assert isinstance(ended, ChatFinished)
    assert ended.content == "Hello, world!"
    assert "metrics are down" in caplog.text


async def test_an_essential_observer_failing_on_the_ending_fails_the_request(
    app: App,
) -> None:
    def refuse(event: ChatFinished) -> None:
        raise ValueError("cannot keep it")

    app.bus.subscribe(ChatFinished, refuse, essential="keep the answer")
    ended = await app.chat.run(ChatRequest(app.next_id(), "hi"))
    assert isinstance(ended, ChatFailed)
    assert ended.message == "could not keep the answer: ValueError: cannot keep it"
    assert ended.content == "Hello, world!"


# -- Ctrl-C ----------------------------------------------------------------------------


async def test_cancelling_returns_the_partial_answer_as_the_ending(
    app: App, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["so far", "x"], fault="never_end", fault_after=1))
    seen = heard(app)
    first = asyncio.Event()
    app.bus.subscribe(TokenDelta, lambda e: first.set())
    task = asyncio.create_task(app.chat.run(ChatRequest(app.next_id(), "hi")))
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    ended = await task
    assert isinstance(ended, ChatCancelled)
    assert (ended.content, ended.provider, ended.sent) == ("so far", "ollama", "hi")
    assert seen[-1] == ended
    assert task.cancelling() == 0  # the cancellation was taken, and the count given back
    assert ollama_env.wait_disconnect(5)
