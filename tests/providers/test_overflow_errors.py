"""How the OpenAI provider recognises a prompt refused as too long, in each server's words,
and how llama.cpp's ``error:`` event lines reach the SDK (issue 21)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2
import pytest

from cortan.config.settings import Timeouts
from cortan.core.errors import ContextOverflowError, CortanError
from cortan.core.messages import Message
from cortan.providers.base import ModelRequest
from cortan.providers.lines import EventLines
from cortan.providers.openai import OpenAIProvider
from tests.servers import FakeOpenAI, Reply

LLAMA = {
    "code": 400,
    "message": "the request exceeds the available context size, try increasing it",
    "type": "exceed_context_size_error",
    "n_prompt_tokens": 4476,
    "n_ctx": 4096,
}


@pytest.fixture
async def provider(openai_server: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    made = OpenAIProvider("openai", openai_server.url + "/v1", openai_server.api_key, Timeouts())
    yield made
    await made.aclose()


async def refusal(provider: OpenAIProvider) -> BaseException:
    with pytest.raises(CortanError) as caught:
        async for _ in provider.stream_chat(ModelRequest("gpt-4o-mini", (Message("user", "x"),))):
            pass
    return caught.value


OPENAI = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "9000 tokens. Please reduce the length of the messages."
)
VLLM = (
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages."
)
LLAMA_COUNTED = (
    "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it"
)
LLAMA_OLD = "input is too large to process. increase the physical batch size"


@pytest.mark.parametrize(
    ("status", "message", "window", "prompt"),
    [
        (400, LLAMA["message"], None, None),
        (400, LLAMA_COUNTED, 4096, 4476),
        (400, OPENAI, 8192, 9000),
        (400, VLLM, 4096, 4000),
        (500, LLAMA_OLD, None, None),
    ],
)
async def test_overflow_in_each_servers_words(
    provider: OpenAIProvider,
    openai_server: FakeOpenAI,
    status: int,
    message: str,
    window: int | None,
    prompt: int | None,
) -> None:
    openai_server.queue(Reply(status=status, error=message))
    error = await refusal(provider)
    assert isinstance(error, ContextOverflowError)
    assert (error.window, error.prompt_tokens) == (window, prompt)
    assert error.kind == "context_overflow"
    assert "\n" not in str(error)


async def test_llama_cpp_counts_are_read(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    openai_server.context_size = 1  # every prompt is too long
    for style in ("status", "sse"):
        openai_server.overflow_style = style
        error = await refusal(provider)
        assert isinstance(error, ContextOverflowError)
        assert error.window == 1
        assert error.prompt_tokens is not None and error.prompt_tokens > 1


@pytest.mark.parametrize(
    "message",
    ["Invalid 'messages': empty array.", "context", "x" * 10_000, "maximum context length is"],
)
async def test_other_refusals_are_not_overflows(
    provider: OpenAIProvider, openai_server: FakeOpenAI, message: str
) -> None:
    openai_server.queue(Reply(status=400, error=message))
    assert not isinstance(await refusal(provider), ContextOverflowError)


class Chunks(httpx2.AsyncByteStream):  # the library's stream, as the client hands it on
    """A response body arriving in these chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def collect(chunks: list[bytes]) -> bytes:
    stream = EventLines(Chunks(chunks))
    return b"".join([piece async for piece in stream])


async def test_error_lines_become_data_events_wherever_the_chunks_split() -> None:
    line = b"error: " + json.dumps(LLAMA).encode() + b"\n\n"
    data = b'data: {"choices": []}\n\n' + line
    for cut in range(len(data) + 1):
        out = await collect([data[:cut], data[cut:]])
        head, event, _ = out.split(b"\n\n")
        assert head == b'data: {"choices": []}'
        assert json.loads(event.removeprefix(b"data: ")) == {"error": LLAMA}


async def test_other_bytes_pass_unchanged() -> None:
    data = b'data: {"x": "error: not a field"}\n\ndata: [DONE]\n\n'
    assert await collect([data[:7], data[7:30], data[30:]]) == data
    assert await collect([b"error: not json"]) == b'data: {"error": {"message": "not json"}}'
