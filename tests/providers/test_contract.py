"""One contract, run over every provider: the real SDK against its loopback server.

Same prompt, same pieces in order and exactly one Finish; the same cortan error
class for the same failure, whichever backend it came from, and whichever transport
carries it: the SDKs' own, or aiohttp as the gateway runs them (``concurrent``).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import cast

import pytest

from cortan.config.settings import ProviderConfig, Timeouts
from cortan.core.errors import (
    BadResponseError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ServerError,
    UnreachableError,
)
from cortan.core.messages import Message
from cortan.providers import get_factory
from cortan.providers.base import Finish, ModelRequest, Piece, Provider, Thinking
from tests.servers import FakeOllama, FakeOpenAI, Reply
from tests.servers.http import FakeServer


@dataclass
class Backend:
    server: FakeServer
    provider: Provider
    model: str


def make_backend(
    kind: str, server: FakeServer, timeouts: Timeouts, concurrent: bool = False
) -> Backend:
    if kind == "ollama":
        config = ProviderConfig(kind="ollama", hosts=[server.url])
        url, model = server.url, "llama3.2:latest"
    else:
        assert isinstance(server, FakeOpenAI)
        server.api_key = "sk-contract"
        config = ProviderConfig(kind="openai", base_url=server.url + "/v1", api_key_env="K")
        url, model = server.url + "/v1", "gpt-4o-mini"
    provider = get_factory(kind)(kind, url, config, timeouts, concurrent=concurrent)
    return Backend(server, provider, model)


KINDS = [("ollama", False), ("openai", False), ("ollama", True), ("openai", True)]
NAMES = ["ollama", "openai", "ollama-aiohttp", "openai-aiohttp"]


@pytest.fixture(params=KINDS, ids=NAMES)
async def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Backend]:
    monkeypatch.setenv("K", "sk-contract")
    kind, concurrent = request.param
    server = FakeOllama() if kind == "ollama" else FakeOpenAI()
    with server:
        timeouts = Timeouts(connect=2, first_token=5, total=2)
        made = make_backend(kind, server, timeouts, concurrent)
        try:
            yield made
        finally:  # its connections close here, not whenever the collector gets to them
            await made.provider.aclose()


async def collect(backend: Backend, model: str | None = None) -> list[Piece]:
    request = ModelRequest(model or backend.model, (Message("user", "hi"),))
    return [item async for item in backend.provider.stream_chat(request)]


async def test_pieces_then_one_finish(backend: Backend) -> None:
    backend.server.queue(Reply(pieces=["héllo", " wörld ", "🌍"], prompt_tokens=9))
    items = await collect(backend)
    assert items[:-1] == ["héllo", " wörld ", "🌍"]
    finish = items[-1]
    assert isinstance(finish, Finish)
    assert finish.finish_reason == "stop"
    assert (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (9, 3)
    await backend.provider.aclose()


async def test_lists_models(backend: Backend) -> None:
    names = [m.name for m in await backend.provider.list_models()]
    assert backend.model in names
    await backend.provider.aclose()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=500, error="boom"), ServerError),
        (Reply(pieces=["a", "b"], fault="close_mid_stream", fault_after=1), ServerError),
        (Reply(pieces=["a", "b"], fault="malformed_line", fault_after=1), BadResponseError),
        (Reply(pieces=["a"], fault="error_in_stream", error="oom"), ServerError),
    ],
)
async def test_faults_map_to_the_same_errors(
    backend: Backend, reply: Reply, error: type[ProviderError]
) -> None:
    backend.server.queue(reply)
    with pytest.raises(error):
        await collect(backend)
    await backend.provider.aclose()


async def test_unknown_model(backend: Backend) -> None:
    with pytest.raises(ModelNotFoundError):
        await collect(backend, model="no-such-model")
    await backend.provider.aclose()


async def test_stall_is_a_timeout(backend: Backend) -> None:
    backend.server.queue(Reply(first_byte_delay=10))
    with pytest.raises(ProviderTimeoutError):
        await collect(backend)
    await backend.provider.aclose()


async def test_closing_early_closes_the_connection(backend: Backend) -> None:
    backend.server.queue(Reply(pieces=["a", "b"], fault="never_end", fault_after=1))
    request = ModelRequest(backend.model, (Message("user", "hi"),))
    stream = cast("AsyncGenerator[str | Finish, None]", backend.provider.stream_chat(request))
    async with aclosing(stream):  # what the model manager does when it stops early
        assert await anext(stream) == "a"
    assert backend.server.wait_disconnect(5)
    await backend.provider.aclose()


@pytest.mark.parametrize(("kind", "concurrent"), KINDS, ids=NAMES)
async def test_connection_refused(
    kind: str, concurrent: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K", "sk")
    config = ProviderConfig(kind=kind, hosts=["http://127.0.0.1:9"], api_key_env="K")  # type: ignore[arg-type]
    url = "http://127.0.0.1:9" if kind == "ollama" else "http://127.0.0.1:9/v1"
    provider = get_factory(kind)(kind, url, config, Timeouts(connect=2), concurrent=concurrent)
    with pytest.raises(UnreachableError, match="cannot reach"):
        async for _ in provider.stream_chat(ModelRequest("m", (Message("user", "x"),))):
            pass
    await provider.aclose()


async def test_reasoning_comes_as_thinking_pieces_before_the_answer(backend: Backend) -> None:
    backend.server.queue(Reply(thinking=["Let me", " see."], pieces=["Hi"]))
    items = await collect(backend)
    assert items[:3] == [Thinking("Let me"), Thinking(" see."), "Hi"]
    assert isinstance(items[-1], Finish)


@pytest.mark.parametrize(("kind", "concurrent"), KINDS, ids=NAMES)
async def test_https_to_a_plain_server_says_tls(
    kind: str, concurrent: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K", "sk")
    with FakeOllama() if kind == "ollama" else FakeOpenAI() as server:
        url = server.url.replace("http://", "https://") + ("" if kind == "ollama" else "/v1")
        config = ProviderConfig(kind=kind, hosts=[url], api_key_env="K")  # type: ignore[arg-type]
        provider = get_factory(kind)(kind, url, config, Timeouts(connect=2), concurrent=concurrent)
        with pytest.raises(UnreachableError, match=r"TLS .* does not speak TLS there"):
            async for _ in provider.stream_chat(ModelRequest("m", (Message("user", "x"),))):
                pass
        await provider.aclose()


async def test_an_answer_leaves_nothing_for_the_cyclic_collector(backend: Backend) -> None:
    """What an answer used is freed as it ends: in the gateway, an httpx response and
    its stream that held each other left some thirty objects a request to the
    collector, whose full passes held every request in flight (cortan.providers.responses)."""
    await collect(backend)  # connections made, modules loaded
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            await collect(backend)
        gc.collect()
        left = {f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert {k for k in left if k.startswith(("httpx", "aiohttp", "cortan"))} == set()
