"""Stream parsing under arbitrary byte boundaries: NDJSON (Ollama) and SSE (OpenAI).

The fake servers send each body cut into HTTP chunks at offsets hypothesis picks
(inside a JSON token, inside a multibyte UTF-8 character, one byte per chunk), and the
real client libraries and cortan's providers must give back exactly the text that was
sent. SSE bodies also vary in what the format allows: CRLF or CR line ends, comment
(keep-alive) lines, ``data:`` without its space.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import aclosing
from itertools import accumulate, cycle, islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortan.config.settings import ProviderConfig, Timeouts
from cortan.core.messages import Message
from cortan.providers import get_factory
from cortan.providers.base import ModelRequest, Provider
from tests.fuzz.profiles import examples
from tests.servers import FakeOllama, FakeOpenAI, Reply

TIMEOUTS = Timeouts(connect=5, first_token=10, total=10)
# Text that stresses the encoders: multibyte UTF-8 (2, 3 and 4 bytes), JSON escapes,
# newlines and the SSE field separator ":", besides anything else hypothesis finds.
TRICKY = st.sampled_from(
    ["é", "€", "日本", "👍🏽", "\u200d", '"', "\\", "\n", "\r\n", ":", "data:"]
)
PIECE = st.one_of(st.text(min_size=1, max_size=12), TRICKY)
PIECES = st.lists(PIECE, min_size=1, max_size=8)
# Chunk sizes, repeated over the whole body: 1 means a chunk per byte.
SIZES = st.one_of(st.just([1]), st.lists(st.integers(1, 23), min_size=1, max_size=6))


def offsets(sizes: list[int], limit: int = 20_000) -> list[int]:
    return list(islice(accumulate(cycle(sizes)), limit // min(sizes) + 1))


@pytest.fixture(scope="module")
def ollama_server() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture(scope="module")
def openai_server_module() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def make_provider(kind: str, url: str) -> Provider:
    config = ProviderConfig(kind="ollama", hosts=[url])
    if kind == "openai":
        config = ProviderConfig(kind="openai", base_url=url, api_key_env="CORTAN_FUZZ_NO_KEY")
    return get_factory(kind)(kind, url, config, TIMEOUTS)


async def stream_text(kind: str, url: str, model: str) -> str:
    provider = make_provider(kind, url)
    text: list[str] = []
    try:
        request = ModelRequest(model, (Message("user", "hi"),))
        async with aclosing(provider.stream_chat(request)) as stream:  # type: ignore[type-var]
            async for item in stream:
                if isinstance(item, str):
                    text.append(item)
    finally:
        await provider.aclose()
    return "".join(text)


@examples(20)
@given(pieces=PIECES, sizes=SIZES)
def test_ndjson_split_anywhere(
    ollama_server: FakeOllama, pieces: list[str], sizes: list[int]
) -> None:
    ollama_server.queue(Reply(pieces=pieces, wire_splits=offsets(sizes)))
    text = asyncio.run(stream_text("ollama", ollama_server.url, "llama3.2:latest"))
    assert text == "".join(pieces)


@examples(12)
@given(pieces=PIECES, sizes=SIZES)
def test_sse_split_anywhere(
    openai_server_module: FakeOpenAI, pieces: list[str], sizes: list[int]
) -> None:
    openai_server_module.queue(Reply(pieces=pieces, wire_splits=offsets(sizes)))
    text = asyncio.run(stream_text("openai", openai_server_module.url + "/v1", "gpt-4o-mini"))
    assert text == "".join(pieces)


def sse_event(fields: list[str], newline: str) -> str:
    return "".join(field + newline for field in fields) + newline


def chunk(delta: dict[str, str], finish: str | None) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    head = {"id": "chatcmpl-fuzz", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return json.dumps({**head, "choices": [choice]}, ensure_ascii=False)


@st.composite
def sse_bodies(draw: st.DrawFn) -> tuple[list[str], bytes]:
    """A valid SSE body, spelled in any of the ways the format allows."""
    pieces = draw(PIECES)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": piece}, None) for piece in pieces]
    events += [chunk({}, "stop"), "[DONE]"]
    body = ""
    for data in events:
        if draw(st.booleans()):
            body += sse_event([": keep-alive"], newline)
        prefix = draw(st.sampled_from(["data: ", "data:"]))
        body += sse_event([prefix + data], newline)
    return pieces, body.encode()


@examples(12)
@given(case=sse_bodies(), sizes=SIZES)
def test_sse_in_every_spelling(
    openai_server_module: FakeOpenAI, case: tuple[list[str], bytes], sizes: list[int]
) -> None:
    pieces, body = case
    openai_server_module.queue(Reply(body=body, wire_splits=offsets(sizes)))
    text = asyncio.run(stream_text("openai", openai_server_module.url + "/v1", "gpt-4o-mini"))
    assert text == "".join(pieces)
