"""Thinking models: every wire form of reasoning, split from the answer, over loopback servers.

The splitter is checked on every way a ``<think>`` block can be cut into pieces
(Hypothesis); the pipeline is checked against the fake servers speaking Ollama's
``message.thinking``, OpenAI-compatible ``reasoning_content`` and ``reasoning``,
and inline tags, with what the server received.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortan.app import App
from cortan.config.load import load_settings
from cortan.core.events import ChatFinished, Notice, ThinkingDelta, TokenDelta
from cortan.core.requests import ChatRequest
from cortan.engine.thinking import ThinkSplitter
from tests.fuzz.profiles import examples
from tests.servers import FakeOllama, FakeOpenAI, Reply

THOUGHT = "The user greets me.\nI should greet back."
OLLAMA = "ollama:llama3.2"


def split_all(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    thinking, answer = [], []
    for piece in pieces:
        split = splitter.feed(piece)
        thinking.append(split.thinking)
        answer.append(split.answer)
    end = splitter.flush()
    return "".join([*thinking, end.thinking]), "".join([*answer, end.answer])


def cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


@examples(300)
@given(cuts=st.lists(st.integers(0, 200), max_size=12), lead=st.sampled_from(["", " ", "\n\n"]))
def test_a_think_block_cut_anywhere_is_split_out(cuts: list[int], lead: str) -> None:
    text = f"{lead}<think>{THOUGHT}</think>\n\nHello! <think> is a tag."
    thinking, answer = split_all(cut(text, cuts))
    assert thinking == THOUGHT
    assert answer == "Hello! <think> is a tag."


@examples(200)
@given(text=st.text(max_size=60), cuts=st.lists(st.integers(0, 80), max_size=6))
def test_an_answer_without_a_leading_think_block_is_untouched(text: str, cuts: list[int]) -> None:
    if text.lstrip().startswith("<think>"):
        return
    thinking, answer = split_all(cut(text, cuts))
    assert (thinking, answer) == ("", text)


def test_an_unclosed_think_block_is_all_reasoning() -> None:
    assert split_all(["<think>still going", " and go"]) == ("still going and go", "")


def test_a_half_tag_at_the_end_is_what_it_seemed() -> None:
    assert split_all(["<thi"]) == ("", "<thi")
    assert split_all(["<think>x</thi"]) == ("x</thi", "")


# -- the pipeline over loopback ----------------------------------------------------------


@pytest.fixture
async def app(ollama_env: FakeOllama, openai_env: FakeOpenAI) -> AsyncIterator[App]:
    built = App.build(load_settings(retry={"attempts": 1}))
    yield built
    await built.aclose()


async def run(app: App, **fields: Any) -> tuple[ChatFinished, list[str], list[str]]:
    thoughts: list[str] = []
    answer: list[str] = []
    app.bus.subscribe(ThinkingDelta, lambda e: thoughts.append(e.text))
    app.bus.subscribe(TokenDelta, lambda e: answer.append(e.text))
    ended = await app.chat.run(ChatRequest(app.next_id(), "hi", **fields))
    assert isinstance(ended, ChatFinished), ended
    return ended, thoughts, answer


async def test_ollama_thinking_field(app: App, ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(thinking=["The user ", "greets me."], pieces=["Hello", "!"]))
    ended, thoughts, answer = await run(app, model=OLLAMA, think="high")
    assert (ended.thinking, ended.content) == ("The user greets me.", "Hello!")
    assert "".join(thoughts) == ended.thinking and "".join(answer) == ended.content
    assert ended.timings.thinking is not None
    assert ollama_env.chat_requests[-1].json["think"] == "high"


@pytest.mark.parametrize("think", [True, "high"])
async def test_thinking_asked_of_a_model_that_cannot_think_is_asked_without(
    app: App, ollama_env: FakeOllama, think: bool | str
) -> None:
    """Ollama refuses the request outright (400): a conversation after `/think` on such a
    model failed every turn. It is answered without, and said."""
    ollama_env.capabilities["llama3.2:latest"] = ["completion", "tools"]
    notices: list[str] = []
    app.bus.subscribe(Notice, lambda n: notices.append(n.text))
    ollama_env.queue(Reply(pieces=["Hi"]))
    ended, thoughts, _ = await run(app, model=OLLAMA, think=think)
    assert ended.content == "Hi" and thoughts == []
    assert "think" not in ollama_env.chat_requests[-1].json
    assert notices == [
        "model ollama:llama3.2 does not think (its server lists: completion, tools): "
        "asking without thinking"
    ]
    ollama_env.queue(Reply(pieces=["Hi"]))
    await run(app, model=OLLAMA, think=think)  # the next turn: not said again
    assert "think" not in ollama_env.chat_requests[-1].json and len(notices) == 1


@pytest.mark.parametrize(
    ("listed", "said"),
    [
        (
            [f"c{n}" for n in range(10_000)],
            "c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, and 20 more",  # 32 kept
        ),
        (["x" * 1_000_000], "x" * 39 + "…"),
        (
            ["\x1b]0;pwn\x07", "a\nb", "\u202eevil", "\x9b2J"],
            "␛]0;pwn␇, a b, <U+202E>evil, <U+009B>2J",
        ),
    ],
    ids=["10,000 entries", "a megabyte", "escapes and a newline"],
)
async def test_a_hostile_servers_capabilities_make_one_short_visible_line(
    app: App, ollama_env: FakeOllama, listed: list[str], said: str
) -> None:
    """The notice quotes what the server listed: a hostile server's list made it a
    megabyte, or lines and escapes of its choosing on the user's terminal."""
    ollama_env.capabilities["llama3.2:latest"] = listed
    notices: list[str] = []
    app.bus.subscribe(Notice, lambda n: notices.append(n.text))
    ollama_env.queue(Reply(pieces=["Hi"]))
    await run(app, model=OLLAMA, think=True)
    assert notices == [
        f"model ollama:llama3.2 does not think (its server lists: {said}): asking without thinking"
    ]


async def test_think_off_is_sent_to_a_model_that_cannot_think(
    app: App, ollama_env: FakeOllama
) -> None:
    ollama_env.capabilities["llama3.2:latest"] = ["completion"]
    ollama_env.queue(Reply(pieces=["Hi"]))
    await run(app, model=OLLAMA, think=False)
    assert ollama_env.chat_requests[-1].json["think"] is False


async def test_ollama_think_off_is_sent(app: App, ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(thinking=["hmm"], pieces=["Hi"]))
    ended, thoughts, _ = await run(app, model=OLLAMA, think=False)
    assert ollama_env.chat_requests[-1].json["think"] is False
    assert (ended.thinking, thoughts, ended.content) == ("", [], "Hi")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_openai_compatible_reasoning_fields(
    app: App, openai_env: FakeOpenAI, field: str
) -> None:
    openai_env.queue(Reply(thinking=["Let me ", "see."], pieces=["4"], reasoning_field=field))
    ended, _, answer = await run(app, model="openai:gpt-4o-mini", think="low")
    assert (ended.thinking, ended.content) == ("Let me see.", "4")
    assert answer == ["4"]
    body = openai_env.chat_requests[-1].json
    assert isinstance(body, dict) and body["reasoning_effort"] == "low"


async def test_openai_reports_reasoning_tokens(app: App, openai_env: FakeOpenAI) -> None:
    openai_env.queue(Reply(thinking=["x"], pieces=["4"], reasoning_tokens=9))
    ended, _, _ = await run(app, model="openai:gpt-4o-mini")
    assert ended.usage.thinking_tokens == 9


@pytest.mark.parametrize("server", ["ollama", "openai"])
async def test_inline_think_tags_cut_across_pieces(
    app: App, ollama_env: FakeOllama, openai_env: FakeOpenAI, server: str
) -> None:
    pieces = ["<th", "ink>Two plus", " two.</thi", "nk>\n\n", "4", "."]
    (ollama_env if server == "ollama" else openai_env).queue(Reply(pieces=pieces))
    model = "openai:gpt-4o-mini" if server == "openai" else OLLAMA
    ended, thoughts, answer = await run(app, model=model)
    assert (ended.thinking, ended.content) == ("Two plus two.", "4.")
    assert "".join(answer) == "4." and "<" not in "".join(answer)
    assert "".join(thoughts) == "Two plus two."


async def test_config_thinks_per_model(ollama_env: FakeOllama) -> None:
    app = App.build(load_settings(think={"llama3.2": "medium"}))
    try:
        ollama_env.queue(Reply(thinking=["a"], pieces=["b"]))
        await run(app)
        assert ollama_env.chat_requests[-1].json["think"] == "medium"
        await run(app, think=False)  # the request's own word wins
        assert ollama_env.chat_requests[-1].json["think"] is False
    finally:
        await app.aclose()


async def test_no_think_field_when_nobody_asked(app: App, ollama_env: FakeOllama) -> None:
    await run(app, model=OLLAMA)
    assert "think" not in ollama_env.chat_requests[-1].json
