"""A hostile model server's wire tricks: floods of nothing, endless error lines, bad bytes.

Each reaches cortan through the real SDK over a loopback socket (or, for the stream
cleaner alone, as the bytes a socket would give): the answer must come within the
user's timeouts, an error in one sentence of bounded length.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cortan.config.settings import ProviderConfig, Timeouts
from cortan.core.errors import CortanError
from cortan.core.messages import Message
from cortan.providers import get_factory
from cortan.providers.base import Finish, ModelRequest
from cortan.providers.lines import EventLines
from cortan.providers.openai import OpenAIProvider
from cortan.store import SessionStore
from tests.conftest import CortanRunner, measured_command
from tests.servers import FakeOllama, FakeOpenAI, Reply

ONE_TRY = {"CORTAN_RETRY__ATTEMPTS": "1"}
EVENT = b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'


def chunk(content: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return EVENT + json.dumps({"choices": [choice]}).encode()[1:] + b"\n\n"


def answer_around(flood: bytes) -> bytes:
    """An answer of two pieces with ``flood`` between them."""
    return chunk("before ") + flood + chunk("after", "stop") + b"data: [DONE]\n\n"


async def stream_of(server: FakeOpenAI, reply: Reply) -> list[object]:
    """What the OpenAI provider makes of ``reply``."""
    server.queue(reply)
    provider = OpenAIProvider("openai", server.url + "/v1", server.api_key, Timeouts(connect=5))
    try:
        return [p async for p in provider.stream_chat(ModelRequest("m", (Message("user", "x"),)))]
    finally:
        await provider.aclose()


# -- floods of nothing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "flood",
    [
        pytest.param(b"\n" * (16 << 20), id="blank-lines"),
        pytest.param(b": ping\n\n" * (2 << 20), id="comments"),
        pytest.param(b"\r\n" * (8 << 20), id="crlf-blank-lines"),
    ],
)
def test_a_flood_of_nothing_costs_little_time(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, flood: bytes
) -> None:
    """16 MiB of lines that carry nothing took 8-30 s (about 2 µs a line in the SDK's
    parser); cleaned before the SDK reads them, the answer comes well within 5 s."""
    openai_env.queue(Reply(body=answer_around(flood)))
    env = {**ONE_TRY, "CORTAN_TIMEOUTS__TOTAL": "5"}
    result = cortan.run("ask", "--no-stdin", "--json", "x", env=env)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["content"] == "before after"


class Chunks:
    """A body arriving in these chunks, as the HTTP client hands them on."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.chunks:
            yield piece

    async def aclose(self) -> None:
        pass


async def cleaned(chunks: list[bytes]) -> bytes:
    return b"".join([piece async for piece in EventLines(Chunks(chunks))])


async def test_one_long_line_in_small_chunks_takes_linear_time() -> None:
    """A 4 MiB line in 64-byte chunks was joined again with each chunk: 65,536 copies
    of up to 4 MiB. Each byte is now copied a bounded number of times."""
    line = b'error: {"message": "' + b"x" * (4 << 20) + b'"}\n\n'
    pieces = [line[i : i + 64] for i in range(0, len(line), 64)]
    begun = time.perf_counter()
    out = await cleaned(pieces)
    assert time.perf_counter() - begun < 2
    event = json.loads(out.removeprefix(b"data: "))
    assert len(event["error"]["message"]) <= 2000  # what is kept of an error is bounded


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([b"data: 1\n\n\n\n\ndata: 2\n\n"], b"data: 1\n\ndata: 2\n\n", id="blank-run"),
        pytest.param(
            [b"data: 1\n\n", b"\n\n", b"\ndata: 2\n\n"],
            b"data: 1\n\ndata: 2\n\n",
            id="blank-run-across-chunks",
        ),
        pytest.param([b": hi\ndata: 1\n: x\ndata: 2\n\n"], b"data: 1\ndata: 2\n\n", id="comments"),
        pytest.param([b"data: 1\r", b"\ndata: 2\r\n\r\n"], b"data: 1\ndata: 2\n\n", id="crlf-cut"),
        pytest.param([b"data: 1\r\n", b"\r\n"], b"data: 1\n\n", id="crlf-blank-next-chunk"),
        pytest.param([b"data: 1\n", b": ping\n", b"\n"], b"data: 1\n\n", id="comment-then-end"),
        pytest.param([b"data: 1\r: a\r\r: b"], b"data: 1\n\n", id="cr-only"),
        pytest.param([b": a\n: b\ndata: 1\n", b": c"], b"data: 1\n", id="comments-at-the-edges"),
    ],
)
async def test_cleaning_keeps_every_event(chunks: list[bytes], expected: bytes) -> None:
    assert await cleaned(chunks) == expected


# -- what arrives whole but wrong -------------------------------------------------------------


async def test_an_error_line_of_megabytes_is_one_short_sentence(
    openai_server: FakeOpenAI,
) -> None:
    body = chunk("so far") + b'error: {"message": "' + b"boom " * 400_000 + b'"}\n\n'
    with pytest.raises(CortanError) as caught:
        await stream_of(openai_server, Reply(body=body))
    message = str(caught.value)
    assert "reported an error mid-answer: boom boom" in message
    assert len(message) <= 500 and "\n" not in message


async def test_an_error_status_with_a_long_body_is_one_short_sentence(
    openai_server: FakeOpenAI,
) -> None:
    with pytest.raises(CortanError) as caught:
        await stream_of(openai_server, Reply(status=500, error="overloaded\n" * 100_000))
    message = str(caught.value)
    assert "failed with HTTP 500: overloaded overloaded" in message
    assert len(message) <= 500 and "\n" not in message


async def test_a_key_echoed_where_a_long_error_is_cut_is_still_blotted_out(
    openai_server: FakeOpenAI,
) -> None:
    """The sentence is cut after the secrets are out: no cut leaves a key's start behind."""
    assert openai_server.api_key is not None
    head = f"the OpenAI-compatible server at {openai_server.url}/v1 failed with HTTP 500: "
    error = "x" * (497 - len(head)) + openai_server.api_key + " more" * 1000
    with pytest.raises(CortanError) as caught:
        await stream_of(openai_server, Reply(status=500, error=error))
    message = str(caught.value)
    assert message.startswith(head) and len(message) <= 500
    assert openai_server.api_key[:4] not in message


async def test_an_ollama_error_with_a_long_body_is_one_short_sentence(ollama: FakeOllama) -> None:
    ollama.queue(Reply(status=500, error="overloaded\n" * 100_000))
    config = ProviderConfig(kind="ollama", hosts=[ollama.url])
    provider = get_factory("ollama")("ollama", ollama.url, config, Timeouts(connect=5))
    try:
        with pytest.raises(CortanError) as caught:
            async for _ in provider.stream_chat(ModelRequest("m", (Message("user", "x"),))):
                pass
    finally:
        await provider.aclose()
    message = str(caught.value)
    assert "reported an error: overloaded overloaded" in message
    assert len(message) <= 500 and "\n" not in message


async def test_bytes_that_are_not_utf8_are_replaced_not_fatal(openai_server: FakeOpenAI) -> None:
    """Ollama's SDK replaces them in its lines; the OpenAI path said "cannot parse"."""
    body = chunk("caf") + EVENT + b'"choices":[{"index":0,"delta":{"content":"\xe9!"}}]}\n\n'
    pieces = await stream_of(openai_server, Reply(body=body + chunk("", "stop")))
    assert "".join(p for p in pieces if isinstance(p, str)) == "caf\ufffd!"
    assert isinstance(pieces[-1], Finish)


# -- what a server says it cost, and why it stopped -------------------------------------------

WRONG_COUNTS = [-5, 10**13, 1.5, "12", True, [1]]


def ask_json(cortan: type[CortanRunner], server: str, env: dict[str, str]) -> dict[str, Any]:
    if server == "openai":
        env = {**env, "CORTAN_DEFAULT_MODEL": "openai:gpt-4o-mini"}
    result = cortan.run("ask", "--no-stdin", "--json", "x", env={**ONE_TRY, **env})
    assert result.code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def stored_counts(data: Path) -> list[tuple[object, object]]:
    with SessionStore.open(data) as store:
        return [(m.prompt_tokens, m.completion_tokens) for m in store.recent_messages(10)]


@pytest.mark.parametrize("server", ["ollama", "openai"])
@pytest.mark.parametrize("count", WRONG_COUNTS, ids=repr)
def test_token_counts_that_cannot_be_are_dropped(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    openai_server: FakeOpenAI,
    isolated_env: Path,
    server: str,
    count: object,
) -> None:
    """Negative, absurd, fractional, text or boolean counts reached --json and the store
    as they came (and Ollama's SDK refused some, losing the answer). From either server,
    ``"12"`` and ``true`` are no counts either (cortan reads OpenAI's chunks as the JSON
    sent, where the SDK's models once made them 12 and 1)."""
    fake = openai_server if server == "openai" else ollama_env
    fake.queue(Reply(prompt_tokens=count, completion_tokens=count))  # type: ignore[arg-type]
    env = {"OPENAI_BASE_URL": openai_server.url + "/v1", "OPENAI_API_KEY": "sk-test-key"}
    report = ask_json(cortan, server, env)
    assert report["content"] == "Hello, world!"
    usage = report["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (None, None)
    assert stored_counts(isolated_env / "data") == [(None, None), (None, None)]


async def test_an_ollama_count_past_any_float_is_dropped_and_the_answer_kept(
    ollama: FakeOllama,
) -> None:
    """``1e400`` made the SDK refuse the final line: the answer was lost as "cannot parse"."""
    head = b'{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant",'
    ollama.queue(Reply(body=head + b'"content":"a"},"done":true,"eval_count":1e400}\n'))
    config = ProviderConfig(kind="ollama", hosts=[ollama.url])
    provider = get_factory("ollama")("ollama", ollama.url, config, Timeouts(connect=5))
    try:
        pieces = [p async for p in provider.stream_chat(ModelRequest("m", (Message("user", "x"),)))]
    finally:
        await provider.aclose()
    assert pieces[0] == "a"
    assert isinstance(pieces[-1], Finish) and pieces[-1].usage.completion_tokens is None


HEAD = b'{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant",'


@pytest.mark.parametrize(
    "value",
    [b"-5", b"1000000000000001", b"9" * 400, b"1.5", b"1e30", b'"3s"', b"true"],
    ids=["negative", "past-1e15", "400-digits", "fraction", "float", "text", "boolean"],
)
async def test_ollama_timings_that_cannot_be_are_left_out(ollama: FakeOllama, value: bytes) -> None:
    """Negative or absurd durations went on as if measured; 400 digits failed the answer
    (already streamed) with an OverflowError."""
    tail = b'"total_duration":' + value + b',"eval_duration":2000000000}\n'
    ollama.queue(Reply(body=HEAD + b'"content":"a"},"done":true,' + tail))
    config = ProviderConfig(kind="ollama", hosts=[ollama.url])
    provider = get_factory("ollama")("ollama", ollama.url, config, Timeouts(connect=5))
    try:
        pieces = [p async for p in provider.stream_chat(ModelRequest("m", (Message("user", "x"),)))]
    finally:
        await provider.aclose()
    assert pieces[0] == "a"
    assert isinstance(pieces[-1], Finish)
    assert dict(pieces[-1].server_timings) == {"eval_duration": 2.0}


def test_an_ollama_duration_past_any_float_keeps_the_answer(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    tail = b'"total_duration":' + b"9" * 400 + b"}\n"
    ollama_env.queue(Reply(body=HEAD + b'"content":"kept"},"done":true,' + tail))
    report = ask_json(cortan, "ollama", {})
    assert report["content"] == "kept"


@pytest.mark.parametrize("server", ["ollama", "openai"])
@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("x" * 100_000, "x" * 32),
        ("stop\x1b[2J\x07", "stop_2J"),
        ("\u202econtent_filter", "content_filter"),
        ("length", "length"),
    ],
    ids=["long", "escape", "bidi", "plain"],
)
def test_a_finish_reason_is_a_short_plain_word(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    openai_server: FakeOpenAI,
    server: str,
    reason: str,
    shown: str,
) -> None:
    fake = openai_server if server == "openai" else ollama_env
    fake.queue(Reply(finish_reason=reason))
    env = {"OPENAI_BASE_URL": openai_server.url + "/v1", "OPENAI_API_KEY": "sk-test-key"}
    assert ask_json(cortan, server, env)["finish_reason"] == shown


# -- a server that does not stream -----------------------------------------------------------


def test_a_server_that_ignores_stream_true_still_gives_the_answer(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    """One JSON object instead of events: the SDK found no event in it, and the answer
    was lost as "ended the answer without finishing it"."""
    openai_env.ignore_stream = True
    openai_env.queue(Reply(pieces=["whole ", "answer"], thinking=["mulling"]))
    report = ask_json(cortan, "openai", {})
    assert report["content"] == "whole answer"
    assert report["thinking"] == "mulling"
    assert report["finish_reason"] == "stop"
    assert report["usage"]["prompt_tokens"] == 7


# -- model listings ----------------------------------------------------------------------


def test_a_listing_of_100000_models_is_read_in_part_quickly_and_said_so(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    """`cortan models` took 51.7 s and 377 MiB (most of it drawing the table): past the
    100 MiB that docs/performance.md promises."""
    openai_env.models = [f"m{i}" for i in range(100_000)]
    peak = tmp_path / "peak"
    env = {"OLLAMA_HOST": "http://127.0.0.1:9", **ONE_TRY}
    done = subprocess.run(
        [*measured_command(peak), "models", "-p", "openai"],
        capture_output=True,
        env={**os.environ, **env},
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert "\nm999 " in stdout and "\nm1000 " not in stdout
    assert "openai: the server lists 1000 models or more; cortan reads the first 1000" in stderr
    assert int(peak.read_text()) < 100 * 1024


@pytest.mark.parametrize(
    "fields",
    [{"size": 1.5}, {"size": "big"}, {"modified_at": "yesterday"}, {"details": {"family": 7}}],
    ids=["fractional-size", "text-size", "bad-date", "bad-family"],
)
def test_an_odd_field_in_ollama_tags_drops_the_field_not_the_listing(
    cortan: type[CortanRunner], ollama_env: FakeOllama, fields: dict[str, Any]
) -> None:
    """The SDK refused the whole listing for one such field: "cannot parse"."""
    ollama_env.tag_fields = fields
    result = cortan.run("models", "--json", "-p", "ollama")
    assert result.code == 0, result.stderr
    names = [m["name"] for m in json.loads(result.stdout)["models"]]
    assert names == ["llama3.2:latest", "qwen2.5-coder:7b"]
