"""A server that refuses a prompt as longer than its window: cortan leaves out more and asks
again, once, and says so (issue 21: a conversation must never get stuck).

Against the fake OpenAI server playing llama.cpp's server started with a small ``-c``: its
tokenizer counts about twice cortan's estimate, as a real model's can, so cortan's own fit
lets through a conversation the server refuses. Each of llama.cpp's ways of refusing is
played: HTTP 400 with ``exceed_context_size_error`` and the counts, an ``error:`` line in a
200 event stream (older builds), and the older sentence without counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cortan.app import App
from cortan.config.load import load_settings
from cortan.core.events import ChatFailed, ChatFinished, Notice
from cortan.core.messages import Message
from cortan.core.requests import ChatRequest
from tests.servers import FakeOpenAI

Make = Callable[..., App]


def conversation(turns: int, size: int = 100) -> tuple[Message, ...]:
    history: list[Message] = []
    for i in range(turns):
        history.append(Message("user", f"q{i} " + " ".join(["word"] * size)))
        history.append(Message("assistant", f"a{i} " + " ".join(["word"] * size)))
    return tuple(history)


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[App] = []

    def build(**flags: Any) -> App:
        app = App.build(load_settings(retry={"attempts": 1}, **flags))
        made.append(app)
        return app

    yield build
    for app in made:
        await app.aclose()


def notices(app: App) -> list[str]:
    seen: list[str] = []
    app.bus.subscribe(Notice, lambda e: seen.append(e.text))
    return seen


async def ask(app: App, prompt: str, **fields: Any) -> Any:
    return await app.ask(ChatRequest(app.next_id(), prompt, **fields))


def user_turns(server: FakeOpenAI, index: int) -> list[str]:
    body = server.chat_requests[index].json
    assert isinstance(body, dict)
    return [m["content"].split()[0] for m in body["messages"] if m["role"] == "user"]


@pytest.mark.parametrize("style", ["status", "sse"])
async def test_an_overflow_is_learned_trimmed_and_asked_again(
    make: Make, openai_env: FakeOpenAI, style: str
) -> None:
    openai_env.context_size, openai_env.overflow_style = 2048, style
    app = make()
    said = notices(app)
    ended = await ask(app, "and now?", history=conversation(8))
    assert isinstance(ended, ChatFinished), ended
    assert openai_env.refused == 1
    assert len(openai_env.chat_requests) == 2
    assert len(user_turns(openai_env, 1)) < len(user_turns(openai_env, 0))
    assert user_turns(openai_env, 1)[-1] == "and"  # the newest message is always sent
    assert said == [
        "openai:gpt-4o-mini refused the conversation as longer than its 2048-token window: "
        f"asking again with {8 - len(user_turns(openai_env, 1)) + 1} more earlier turns left out"
    ]
    # The window and the count are believed for the rest of the run: no second refusal.
    ended = await ask(app, "and then?", history=conversation(8))
    assert isinstance(ended, ChatFinished), ended
    assert openai_env.refused == 1
    assert said[-1].endswith("left out to fit the 2048-token window")


async def test_an_overflow_without_counts_still_gets_unstuck(
    make: Make, openai_env: FakeOpenAI
) -> None:
    """Older llama.cpp: HTTP 500, "input is too large to process", no n_ctx: estimates
    grow until at least one more turn is left out."""
    openai_env.context_size, openai_env.overflow_style = 2048, "text"
    app = make(context={"window": 4096})
    said = notices(app)
    ended = await ask(app, "and now?", history=conversation(8))
    assert isinstance(ended, ChatFinished), ended
    assert openai_env.refused == 1
    assert "refused the conversation as longer than its window" in said[-1]


async def test_a_second_refusal_ends_in_one_sentence(make: Make, openai_env: FakeOpenAI) -> None:
    """Asked again once only: a server that refuses that too ends the request failed."""
    openai_env.context_size = 600  # even one earlier turn and the message are too long
    app = make()
    ended = await ask(app, " ".join(["long"] * 500), history=conversation(2))
    assert isinstance(ended, ChatFailed)
    assert ended.kind in {"context_overflow", "input"}
    assert "\n" not in ended.message
    assert openai_env.refused <= 2
    assert len(openai_env.chat_requests) <= 2


async def test_the_newest_message_alone_too_long_is_one_sentence(
    make: Make, openai_env: FakeOpenAI
) -> None:
    openai_env.context_size = 100
    app = make()
    ended = await ask(app, " ".join(["long"] * 300))
    assert isinstance(ended, ChatFailed)
    assert ended.kind == "input"
    assert "shorten it or attach less" in ended.message
    assert openai_env.refused == 1  # not asked again with the same prompt


async def test_the_next_run_fits_at_once(make: Make, openai_env: FakeOpenAI) -> None:
    """A new App (a new `cortan ask`) believes what the server told the last one: the
    window and its own count of the prompt, so it sends one request, not two."""
    openai_env.context_size = 2048
    first = make()
    assert isinstance(await ask(first, "and now?", history=conversation(8)), ChatFinished)
    await first.aclose()
    assert (openai_env.refused, len(openai_env.chat_requests)) == (1, 2)
    second = make()
    said = notices(second)
    ended = await ask(second, "and then?", history=conversation(8))
    assert isinstance(ended, ChatFinished), ended
    assert (openai_env.refused, len(openai_env.chat_requests)) == (1, 3)
    assert said == [said[0]] and said[0].endswith("left out to fit the 2048-token window")


async def test_a_store_that_cannot_keep_it_costs_no_answer(
    make: Make, openai_env: FakeOpenAI, isolated_env: Path
) -> None:
    """Not a store at the store's path: nothing is kept, every answer still comes."""
    path = isolated_env / "data" / "cortan.db"
    path.parent.mkdir()
    path.write_bytes(b"someone else's file " * 50)
    openai_env.context_size = 2048
    for _ in range(2):
        app = make()
        ended = await ask(app, "and now?", history=conversation(8))
        assert isinstance(ended, ChatFinished), ended
        await app.aclose()
    assert openai_env.refused == 2  # learned afresh by each run
    assert path.read_bytes() == b"someone else's file " * 50


async def test_an_overflow_without_counts_far_below_the_window_believed(
    make: Make, openai_env: FakeOpenAI
) -> None:
    """A server with a small window and no counts, the window believed cortan's default
    (8192): three turns too many were refused and the message failed, saying "every
    earlier turn already left out" with three still in (issue 21, found by verify21). The
    window believed starts from what was sent, not from 8192."""
    openai_env.context_size, openai_env.overflow_style = 1200, "text"
    app = make()
    said = notices(app)
    ended = await ask(app, "and now?", history=conversation(3))
    assert isinstance(ended, ChatFinished), ended
    assert openai_env.refused == 1
    assert 1 <= len(user_turns(openai_env, 1)) < len(user_turns(openai_env, 0))
    assert "refused the conversation as longer than its window" in said[-1]
