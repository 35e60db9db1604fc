"""What a server claims is checked before it is trusted: its choices and its window.

* A stream that interleaves chunks of choices 0 and 1 (a server or proxy that set
  ``n``) must give the answer of choice 0 alone, not two answers mixed into one.
* A context length from ``/api/show`` that is zero, negative, not an integer or absurd
  counts as unknown: it must neither refuse every request nor let any prompt through.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortan.config.settings import ProviderConfig, Timeouts
from cortan.providers import get_factory
from cortan.providers.base import MAX_CONTEXT_LENGTH
from tests.conftest import CortanRunner
from tests.servers import FakeOllama, FakeOpenAI, Reply

ONE_TRY = {"CORTAN_RETRY__ATTEMPTS": "1"}


def _chunk(index: int, content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    event = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + json.dumps({**event, "choices": [choice]}).encode() + b"\n\n"


def interleaved(first: list[str], second: list[str], order: list[int]) -> bytes:
    """Chunks of choices 0 and 1 in the ``order`` given (0s and 1s), then both finish."""
    queues = {0: list(first), 1: list(second)}
    body = b""
    for index in order:
        if queues[index]:
            body += _chunk(index, queues[index].pop(0))
    for index in (0, 1):
        for piece in queues[index]:
            body += _chunk(index, piece)
    return body + _chunk(1, None, "length") + _chunk(0, None, "stop") + b"data: [DONE]\n\n"


def test_interleaved_choices_give_choice_zero_only(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    first, second = ["The ", "answer ", "is ", "42."], ["IGNORE ", "ME ", "ENTIRELY"]
    openai_env.queue(Reply(body=interleaved(first, second, [0, 1, 1, 0, 1, 0, 0])))
    result = cortan.run("ask", "--no-stdin", "--json", "x", env=ONE_TRY)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["content"] == "The answer is 42."
    assert report["finish_reason"] == "stop"


@pytest.fixture(scope="module")
def openai_module() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@settings(max_examples=25, deadline=None)
@given(
    first=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6),
    second=st.lists(st.text(min_size=1, max_size=5), max_size=6),
    order=st.lists(st.integers(0, 1), max_size=14),
)
def test_any_interleaving_yields_choice_zero(
    openai_module: FakeOpenAI, first: list[str], second: list[str], order: list[int]
) -> None:
    openai_module.queue(Reply(body=interleaved(first, second, order)))
    config = ProviderConfig(kind="openai", base_url=openai_module.url + "/v1")
    url = openai_module.url + "/v1"

    async def collect() -> str:
        provider = get_factory("openai")("openai", url, config, Timeouts(connect=5))
        try:
            from cortan.core.messages import Message
            from cortan.providers.base import Finish, ModelRequest

            text = ""
            async for piece in provider.stream_chat(ModelRequest("m", (Message("user", "x"),))):
                if isinstance(piece, str):
                    text += piece
                else:
                    assert isinstance(piece, Finish) and piece.finish_reason == "stop"
            return text
        finally:
            await provider.aclose()

    assert asyncio.run(collect()) == "".join(first)


BAD_WINDOWS = [-1, 0, -(1 << 40), MAX_CONTEXT_LENGTH + 1, 10**30, True, 1.5, "4096", None]


@pytest.mark.parametrize("window", BAD_WINDOWS, ids=repr)
def test_wrong_context_length_counts_as_unknown(
    cortan: type[CortanRunner], ollama_env: FakeOllama, window: object
) -> None:
    ollama_env.context_length = window  # type: ignore[assignment]
    result = cortan.run("ask", "--no-stdin", "hello there", env=ONE_TRY)
    assert (result.code, result.stdout) == (0, "Hello, world!\n"), result.stderr
    shown = cortan.run("models", "show", "llama3.2:latest", "--json")
    assert shown.code == 0, shown.stderr
    assert json.loads(shown.stdout)["context_length"] is None


def test_a_sane_context_length_is_still_used(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.context_length = 8192
    shown = cortan.run("models", "show", "llama3.2:latest", "--json")
    assert json.loads(shown.stdout)["context_length"] == 8192


@pytest.fixture(scope="module")
def ollama_module() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@settings(max_examples=40, deadline=None)
@given(window=st.integers() | st.floats(allow_nan=True) | st.booleans() | st.text(max_size=8))
def test_any_reported_window_is_sane_or_unknown(ollama_module: FakeOllama, window: object) -> None:
    ollama_module.context_length = window  # type: ignore[assignment]
    config = ProviderConfig(kind="ollama", hosts=[ollama_module.url])

    async def shown() -> int | None:
        provider = get_factory("ollama")("ollama", ollama_module.url, config, Timeouts(connect=5))
        try:
            return (await provider.show_model("llama3.2:latest")).context_length
        finally:
            await provider.aclose()

    length = asyncio.run(shown())
    assert length is None or (type(length) is int and 0 < length <= MAX_CONTEXT_LENGTH)
    if type(window) is int and 0 < window <= MAX_CONTEXT_LENGTH:
        assert length == window
