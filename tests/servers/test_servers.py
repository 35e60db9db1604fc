"""The fakes are only useful if real clients accept them: drive the upstream
`ollama` and `openai` libraries over real sockets and check what they see."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.servers import FakeOllama, FakeOpenAI, Reply

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server
    assert server.errors == []


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
    assert server.errors == []


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def oclient(server: FakeOllama, **kwargs: Any) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=server.url, **kwargs)


def aclient(server: FakeOpenAI, **kwargs: Any) -> openai.AsyncOpenAI:
    kwargs.setdefault("api_key", "k")
    return openai.AsyncOpenAI(base_url=server.url + "/v1", max_retries=0, **kwargs)


async def ollama_stream(client: ollama.AsyncClient, model: str = "llama3.2") -> AsyncIterator[Any]:
    async for part in await client.chat(model=model, messages=MESSAGES, stream=True):
        yield part


async def ollama_chunks(server: FakeOllama, model: str = "llama3.2:latest") -> list[Any]:
    async with oclient(server) as client:
        return [part async for part in ollama_stream(client, model)]


async def openai_chunks(server: FakeOpenAI, model: str = "gpt-4o-mini", **kw: Any) -> list[Any]:
    async with aclient(server, **kw) as client:
        stream = await client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        return [chunk async for chunk in stream]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- Ollama ---------------------------------------------------------------------------


def test_ollama_stream_yields_pieces_then_done(fake_ollama: FakeOllama) -> None:
    parts = run(ollama_chunks(fake_ollama))
    assert [p.message.content for p in parts] == ["Hello", ", ", "world", "!", ""]
    assert [p.done for p in parts] == [False] * 4 + [True]
    done = parts[-1]
    assert (done.done_reason, done.eval_count, done.prompt_eval_count) == ("stop", 4, 7)
    assert done.eval_duration > 0
    assert done.total_duration >= done.eval_duration
    (request,) = fake_ollama.chat_requests
    assert request.json["messages"] == MESSAGES
    assert request.json["stream"] is True
    assert request.received_at <= time.monotonic()


def test_ollama_non_stream_and_usage(fake_ollama: FakeOllama) -> None:
    fake_ollama.queue(Reply(completion_tokens=42, finish_reason="length"))

    async def go() -> Any:
        async with oclient(fake_ollama) as client:
            return await client.chat(model="llama3.2", messages=MESSAGES, stream=False)

    response = run(go())
    assert response.message.content == "Hello, world!"
    assert (response.done, response.done_reason, response.eval_count) == (True, "length", 42)


def test_ollama_list_show_version(fake_ollama: FakeOllama) -> None:
    fake_ollama.models = ["llama3.2:latest", "mistral:7b"]
    fake_ollama.context_length = 8192

    async def go() -> tuple[Any, Any, Any]:
        async with oclient(fake_ollama) as client:
            return await client.list(), await client.show("mistral:7b"), await client.ps()

    listed, shown, ps = run(go())
    assert [m.model for m in listed.models] == ["llama3.2:latest", "mistral:7b"]
    assert listed.models[0].details.quantization_level == "Q4_K_M"
    assert shown.modelinfo["llama.context_length"] == 8192
    assert shown.details.family == "llama"
    assert "FROM mistral:7b" in shown.modelfile
    assert ps.models == []
    assert httpx.get(fake_ollama.url + "/api/version").json() == {"version": "0.12.0"}
    assert httpx.get(fake_ollama.url + "/api/nope").status_code == 404


def test_ollama_unknown_model_is_404(fake_ollama: FakeOllama) -> None:
    with pytest.raises(ollama.ResponseError) as chat_error:
        run(ollama_chunks(fake_ollama, "nope"))
    assert chat_error.value.status_code == 404
    assert chat_error.value.error == 'model "nope" not found, try pulling it first'

    async def show() -> None:
        async with oclient(fake_ollama) as client:
            await client.show("nope")

    with pytest.raises(ollama.ResponseError) as show_error:
        run(show())
    assert (show_error.value.status_code, show_error.value.error) == (404, "model 'nope' not found")


def test_ollama_error_reply_and_error_in_stream(fake_ollama: FakeOllama) -> None:
    fake_ollama.queue(
        Reply(status=500, error="out of memory"),
        Reply(fault="error_in_stream", fault_after=2, error="boom"),
    )
    with pytest.raises(ollama.ResponseError) as status_error:
        run(ollama_chunks(fake_ollama))
    assert (status_error.value.status_code, status_error.value.error) == (500, "out of memory")

    seen: list[str] = []

    async def go() -> None:
        async with oclient(fake_ollama) as client:
            async for part in ollama_stream(client):
                seen.append(part.message.content)

    with pytest.raises(ollama.ResponseError, match="boom"):
        run(go())
    assert seen == ["Hello", ", "]


def test_ollama_malformed_line_and_close_mid_stream(fake_ollama: FakeOllama) -> None:
    fake_ollama.queue(Reply(fault="malformed_line"), Reply(fault="close_mid_stream"))
    with pytest.raises(json.JSONDecodeError):
        run(ollama_chunks(fake_ollama))
    with pytest.raises(httpx.RemoteProtocolError):
        run(ollama_chunks(fake_ollama))


# -- OpenAI ---------------------------------------------------------------------------


def test_openai_stream_yields_pieces_and_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = "k"  # the client's key: accepted
    chunks = run(openai_chunks(fake_openai))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:5]] == ["Hello", ", ", "world", "!"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 4, 11)
    (request,) = fake_openai.chat_requests
    assert request.headers["authorization"] == "Bearer k"
    assert request.json["stream_options"] == {"include_usage": True}


def test_openai_non_stream_and_models(fake_openai: FakeOpenAI) -> None:
    fake_openai.queue(Reply(pieces=["a", "b"], finish_reason="length", prompt_tokens=3))

    async def go() -> tuple[Any, Any]:
        async with aclient(fake_openai) as client:
            done = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            return done, [m.id async for m in client.models.list()]

    done, models = run(go())
    assert done.choices[0].message.content == "ab"
    assert done.choices[0].finish_reason == "length"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (3, 2)
    assert models == ["gpt-4o-mini", "gpt-4o"]


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        (
            lambda s: setattr(s, "api_key", "sk-right"),
            openai.AuthenticationError,
            "invalid_api_key",
        ),
        (lambda s: setattr(s, "models", []), openai.NotFoundError, "model_not_found"),
        (lambda s: s.queue(Reply(status=429)), openai.RateLimitError, "rate_limit_exceeded"),
        (lambda s: s.queue(Reply(status=503)), openai.InternalServerError, None),
    ],
    ids=["401", "404", "429", "503"],
)
def test_openai_status_errors(
    fake_openai: FakeOpenAI,
    setup: Callable[[FakeOpenAI], None],
    error: type[openai.APIStatusError],
    code: str | None,
) -> None:
    setup(fake_openai)
    with pytest.raises(error) as caught:
        run(openai_chunks(fake_openai, api_key="sk-wrong-key"))
    assert caught.value.code == code
    assert caught.value.response.headers["x-request-id"].startswith("req_")
    if code == "model_not_found":
        assert "The model `gpt-4o-mini` does not exist" in caught.value.message


def test_openai_429_retry_after_reaches_client(fake_openai: FakeOpenAI) -> None:
    fake_openai.queue(Reply(status=429, headers={"retry-after": "1"}))
    with pytest.raises(openai.RateLimitError) as caught:
        run(openai_chunks(fake_openai))
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.type == "requests"


def test_openai_base_url_without_v1_is_404(fake_openai: FakeOpenAI) -> None:
    async def go() -> None:
        async with openai.AsyncOpenAI(base_url=fake_openai.url, api_key="k", max_retries=0) as c:
            await c.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with pytest.raises(openai.NotFoundError) as caught:
        run(go())
    assert caught.value.response.json() == {"detail": "Not Found"}


def test_openai_faults_in_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.queue(
        Reply(fault="error_in_stream", error="overloaded"),
        Reply(fault="malformed_line"),
        Reply(fault="close_mid_stream", fault_after=2),
    )
    with pytest.raises(openai.APIError, match="overloaded"):
        run(openai_chunks(fake_openai))
    with pytest.raises(json.JSONDecodeError):
        run(openai_chunks(fake_openai))
    with pytest.raises(openai.APIConnectionError) as caught:
        run(openai_chunks(fake_openai))
    assert "peer closed connection" in str(caught.value.__cause__)


# -- both: timing, disconnects, encoding ------------------------------------------------


def test_multibyte_pieces_survive(fake_ollama: FakeOllama, fake_openai: FakeOpenAI) -> None:
    pieces = ("h", "é", "llo ", "🌍", "!")
    fake_ollama.default = fake_openai.default = Reply(pieces=pieces)
    parts = run(ollama_chunks(fake_ollama))
    assert "".join(p.message.content for p in parts) == "héllo 🌍!"
    assert text_of(run(openai_chunks(fake_openai))) == "héllo 🌍!"


def test_pieces_arrive_over_time(fake_openai: FakeOpenAI) -> None:
    fake_openai.default = Reply(delay=0.1)
    stamps: list[float] = []

    async def go() -> None:
        async with aclient(fake_openai) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    stamps.append(time.monotonic())

    run(go())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) == 3
    assert min(gaps) > 0.07


def test_first_byte_delay_beyond_client_timeout(
    fake_ollama: FakeOllama, fake_openai: FakeOpenAI
) -> None:
    fake_ollama.queue(Reply(first_byte_delay=2))
    fake_openai.queue(Reply(first_byte_delay=2))

    async def ollama_call() -> None:
        async with oclient(fake_ollama, timeout=0.3) as client:
            await client.chat(model="llama3.2", messages=MESSAGES, stream=False)

    with pytest.raises(httpx.ReadTimeout):
        run(ollama_call())
    with pytest.raises(openai.APITimeoutError):
        run(openai_chunks(fake_openai, timeout=0.3))
    assert fake_ollama.wait_disconnect(1)
    assert fake_openai.wait_disconnect(1)


@pytest.mark.parametrize("fault", ["never_end", None])
def test_client_cancel_is_seen_as_disconnect_promptly(
    fake_ollama: FakeOllama, fault: str | None
) -> None:
    # never_end stalls forever; None + delay=30 is a very slow stream
    fake_ollama.default = Reply(delay=30, fault="never_end" if fault else None)
    got: list[str] = []

    async def consume() -> None:
        async with oclient(fake_ollama) as client:
            async for part in ollama_stream(client):
                got.append(part.message.content)

    async def go() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(consume(), 0.5)

    run(go())
    assert got == ["Hello"]
    assert fake_ollama.wait_disconnect(0.25)  # noticed by the read race, not by a later write


def test_openai_stream_close_is_a_disconnect(fake_openai: FakeOpenAI) -> None:
    fake_openai.default = Reply(fault="never_end", fault_after=2)

    async def go() -> None:
        async with aclient(fake_openai) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content == ", ":
                    break
            await stream.close()

    run(go())
    assert fake_openai.wait_disconnect(1)
    assert fake_openai.disconnects == 1


# -- scripting API and HTTP core --------------------------------------------------------


def test_queue_default_reset_and_keep_alive(fake_ollama: FakeOllama) -> None:
    fake_ollama.queue(Reply(pieces=["one"]), Reply(pieces=["two"], status=200))
    fake_ollama.default = Reply(pieces=["default"])

    async def go() -> list[str]:
        async with oclient(fake_ollama) as client:
            out = []
            for _ in range(3):
                response = await client.chat(model="llama3.2", messages=MESSAGES, stream=False)
                out.append(response.message.content)
            return out

    assert run(go()) == ["one", "two", "default"]
    assert fake_ollama.wait_requests(3, timeout=0.1)
    assert fake_ollama.connections == 1  # keep-alive reuse
    fake_ollama.queue(Reply())
    fake_ollama.reset()
    assert (fake_ollama.requests, fake_ollama.disconnects, fake_ollama.connections) == ([], 0, 0)
    assert not fake_ollama.wait_requests(1, timeout=0.05)


def test_queued_reply_overrides_unknown_model(fake_ollama: FakeOllama) -> None:
    fake_ollama.queue(Reply(pieces=["ok"]))
    parts = run(ollama_chunks(fake_ollama, "not-installed"))
    assert parts[0].message.content == "ok"


def test_raw_connection_close_and_chunk_sizes(fake_ollama: FakeOllama) -> None:
    fake_ollama.default = Reply(pieces=["🌍"])
    body = b'{"model": "llama3.2", "messages": []}'
    head = f"POST /api/chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}"
    with socket.create_connection((fake_ollama.host, fake_ollama.port), timeout=2) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        raw = b""
        while data := sock.recv(65536):  # ends only because the server closes
            raw += data
    header, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in header
    assert b"connection: close" in header
    size, _, rest = rest.partition(b"\r\n")
    line = rest[: int(size, 16)]
    assert json.loads(line)["message"]["content"] == "🌍"
    assert raw.endswith(b"0\r\n\r\n")


def test_main_runs_a_server_in_the_foreground(tmp_path: Path) -> None:
    pieces = tmp_path / "pieces.txt"
    pieces.write_text("abcdefghij", encoding="utf-8")
    cmd = [sys.executable, "-m", "tests.servers", "ollama", "--pieces-file", str(pieces)]
    with subprocess.Popen(
        [*cmd, "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            body = {"model": "llama3.2", "messages": MESSAGES}
            with httpx.stream("POST", url + "/api/chat", json=body, timeout=5) as response:
                lines = [json.loads(line) for line in response.iter_lines()]
        finally:
            proc.terminate()
        assert proc.wait(5) == 0
    assert [x["message"]["content"] for x in lines] == ["abcd", "efgh", "ij", ""]


def test_in_flight_is_counted_and_max_parallel_queues_the_rest(fake_ollama: FakeOllama) -> None:
    # As a real Ollama with OLLAMA_NUM_PARALLEL=2: two answered at once, the others wait
    # (counted in flight, since the client has them outstanding), none refused.
    fake_ollama.max_parallel = 2
    fake_ollama.default = Reply(pieces=["a", "b", "c"], delay=0.05)

    async def one(client: ollama.AsyncClient) -> float:
        began = time.monotonic()
        async for _ in ollama_stream(client):
            pass
        return time.monotonic() - began

    async def main() -> list[float]:
        async with oclient(fake_ollama) as client:
            return list(await asyncio.gather(*(one(client) for _ in range(4))))

    durations = run(main())
    assert fake_ollama.peak_in_flight == 4
    assert fake_ollama.in_flight == 0
    assert len(fake_ollama.chat_requests) == 4
    # Two played at once, two after them: the last waited for a whole reply first.
    assert max(durations) >= 2 * 0.1
    fake_ollama.reset()
    assert fake_ollama.peak_in_flight == 0
