"""The model manager over loopback servers: retries, hosts, breakers and fallback.

The manager is built as the composition root builds it, with the bus and settings,
and driven through the engine's one entry point, ``Chat.run``; only time is
replaced, through its ``clock``/``sleep``/``jitter`` arguments, so that backoff and
cool-downs cost nothing. The network is real: the providers and their SDKs talk to
the fake servers in tests/servers over loopback sockets, and a dead host is a bound
port that nobody listens on (connections are refused)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cortan.config.settings import Settings
from cortan.core.events import (
    ChatFailed,
    ChatFinished,
    ChatStarted,
    Notice,
    TokenDelta,
)
from cortan.engine.breaker import BreakerState
from cortan.engine.bus import EventBus
from cortan.engine.manager import ModelManager
from tests.engine.harness import Harness, providers
from tests.servers import FakeOllama, FakeOpenAI, Reply


@pytest.fixture
def keyed_openai(openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    return openai_server


async def test_two_hosts_one_down(
    make: Callable[..., Harness], dead_url: str, ollama: FakeOllama
) -> None:
    h = make(providers=providers([dead_url, ollama.url]), breaker={"failures": 2})
    for _ in range(3):
        ended = await h.ask()
        assert isinstance(ended, ChatFinished), ended
        assert ended.content == "Hello, world!"
    assert len(ollama.chat_requests) == 3
    dead, live = h.host(dead_url), h.host(ollama.url)
    assert (dead.state, dead.failures) == (BreakerState.OPEN, 2)  # the third request skipped it
    assert dead.reopens_in == 30
    assert (live.state, live.failures) == (BreakerState.CLOSED, 0)
    assert live.latency is not None
    assert h.time.sleeps == []  # failing over to another host needs no backoff


async def test_breaker_half_opens_after_cool_down_and_closes_on_success(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    with FakeOllama() as flaky:
        flaky.default = Reply(status=500, error="overloaded")
        hosts = [flaky.url, ollama.url]
        h = make(providers=providers(hosts), breaker={"failures": 2, "cooldown": 30})
        for _ in range(3):
            assert isinstance(await h.ask(), ChatFinished)
        assert len(flaky.chat_requests) == 2
        assert h.host(flaky.url).state is BreakerState.OPEN
        h.time.now += 29
        assert h.host(flaky.url).state is BreakerState.OPEN
        h.time.now += 1
        assert h.host(flaky.url).state is BreakerState.HALF_OPEN
        flaky.default = Reply(pieces=["from ", "flaky"])
        ended = await h.ask()
        assert isinstance(ended, ChatFinished)
        assert ended.content == "from flaky"  # the trial went to the recovered host
        assert h.host(flaky.url).state is BreakerState.CLOSED


async def test_failed_trial_reopens(
    make: Callable[..., Harness], dead_url: str, ollama: FakeOllama
) -> None:
    h = make(providers=providers([dead_url, ollama.url]), breaker={"failures": 1, "cooldown": 5})
    assert isinstance(await h.ask(), ChatFinished)
    assert h.host(dead_url).state is BreakerState.OPEN
    h.time.now += 5
    assert isinstance(await h.ask(), ChatFinished)
    assert (h.host(dead_url).state, h.host(dead_url).failures) == (BreakerState.OPEN, 2)
    assert h.host(dead_url).reopens_in == 5


async def test_open_circuit_is_skipped_when_a_fallback_remains(
    make: Callable[..., Harness], dead_url: str, keyed_openai: FakeOpenAI
) -> None:
    h = make(
        providers=providers([dead_url], keyed_openai),
        fallback=["openai:gpt-4o-mini"],
        retry={"attempts": 1},
        breaker={"failures": 1},
    )
    assert isinstance(await h.ask(), ChatFinished)
    assert h.host(dead_url).state is BreakerState.OPEN
    assert isinstance(await h.ask(), ChatFinished)
    notice = h.of(Notice, 2)[0].text
    assert "circuit open" in notice
    assert notice.endswith("answered by openai:gpt-4o-mini")
    assert h.host(dead_url).failures == 1  # not tried again
    # With nothing else to try, the open host is tried anyway.
    ended = await h.ask(fallback=False)
    assert isinstance(ended, ChatFailed)
    assert "cannot reach Ollama" in ended.message
    assert h.host(dead_url).failures == 2


async def test_list_models_fails_over_to_a_live_host(
    make: Callable[..., Harness], dead_url: str, ollama: FakeOllama
) -> None:
    h = make(providers=providers([dead_url, ollama.url]))
    models = await h.manager.list_models("ollama")
    assert [m.name for m in models] == ["llama3.2:latest", "qwen2.5-coder:7b"]


def test_host_states_before_any_request(dead_url: str, ollama: FakeOllama) -> None:
    manager = ModelManager(EventBus(), Settings(providers=providers([dead_url, ollama.url])))
    states = {(s.provider, s.url): s for s in manager.host_states()}
    assert ("ollama", dead_url) in states
    assert ("ollama", ollama.url) in states
    assert all(s.state is BreakerState.CLOSED and s.in_flight == 0 for s in states.values())


# -- retries ----------------------------------------------------------------------------


async def test_rate_limit_honours_retry_after(
    make: Callable[..., Harness], keyed_openai: FakeOpenAI
) -> None:
    keyed_openai.queue(Reply(status=429, headers={"retry-after": "2"}))
    h = make(providers=providers([], keyed_openai), default_model="openai:gpt-4o-mini")
    ended = await h.ask()
    assert isinstance(ended, ChatFinished)
    assert ended.content == "Hello, world!"
    assert h.time.sleeps == [2.0]
    assert len(keyed_openai.chat_requests) == 2
    assert "trying again in 2 s" in h.of(Notice)[0].text


async def test_rate_limit_past_the_deadline_is_not_waited_for(
    make: Callable[..., Harness], keyed_openai: FakeOpenAI
) -> None:
    keyed_openai.default = Reply(status=429, headers={"retry-after": "120"})
    h = make(providers=providers([], keyed_openai), default_model="openai:gpt-4o-mini")
    ended = await h.ask()
    assert isinstance(ended, ChatFailed)
    assert ended.kind == "rate_limited"
    assert ended.message.endswith("(it asks to wait 120 s, past retry.deadline (60 s))")
    assert h.time.sleeps == []
    assert len(keyed_openai.chat_requests) == 1


async def test_ollama_rate_limit_honours_retry_after_too(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    """docs/providers.md: "a server's retry-after is waited for as given". The Ollama SDK
    drops the response's headers, so a 429 from Ollama (or a proxy before it) was retried
    after a short backoff, and a wait past the deadline was tried anyway."""
    ollama.queue(Reply(status=429, error="slow down", headers={"retry-after": "2"}))
    h = make(providers=providers([ollama.url]))
    ended = await h.ask()
    assert isinstance(ended, ChatFinished)
    assert h.time.sleeps == [2.0]
    assert "trying again in 2 s" in h.of(Notice)[0].text

    ollama.default = Reply(status=429, error="slow down", headers={"retry-after": "120"})
    ended = await h.ask()
    assert isinstance(ended, ChatFailed)
    assert ended.message.endswith("(it asks to wait 120 s, past retry.deadline (60 s))")
    assert h.time.sleeps == [2.0]


async def test_server_error_then_success_gives_one_whole_answer(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    ollama.queue(
        Reply(status=500, error="boom"),
        Reply(pieces=["never", "shown"], fault="error_in_stream", fault_after=0),
    )
    h = make(providers=providers([ollama.url]))
    ended = await h.ask()
    assert isinstance(ended, ChatFinished)
    assert ended.content == "Hello, world!"
    assert "".join(d.text for d in h.of(TokenDelta)) == "Hello, world!"
    assert len(ollama.chat_requests) == 3
    assert h.time.sleeps == [0.25, 0.5]  # full jitter at 0.5 of 0.5 s, then of 1 s
    assert len(h.of(ChatStarted)) == 1


async def test_no_retry_or_fallback_after_the_first_token(
    make: Callable[..., Harness], ollama: FakeOllama, keyed_openai: FakeOpenAI
) -> None:
    ollama.queue(Reply(pieces=["partial ", "rest"], fault="close_mid_stream", fault_after=1))
    h = make(providers=providers([ollama.url], keyed_openai), fallback=["openai:gpt-4o-mini"])
    ended = await h.ask()
    assert isinstance(ended, ChatFailed)
    assert ended.content == "partial "
    assert (ended.provider, ended.model) == ("ollama", "llama3.2")
    assert len(ollama.chat_requests) == 1
    assert keyed_openai.chat_requests == []
    assert h.time.sleeps == []


async def test_client_errors_are_not_retried(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    h = make(providers=providers([ollama.url]))
    ended = await h.ask("ollama:mistral")
    assert isinstance(ended, ChatFailed)
    assert ended.kind == "model_not_found"
    assert len(ollama.chat_requests) == 1


# -- fallback ---------------------------------------------------------------------------


async def test_fallback_from_a_dead_model_to_a_live_one(
    make: Callable[..., Harness], dead_url: str, keyed_openai: FakeOpenAI
) -> None:
    h = make(providers=providers([dead_url], keyed_openai), fallback=["openai:gpt-4o-mini"])
    ended = await h.ask()
    assert isinstance(ended, ChatFinished)
    assert (ended.provider, ended.model, ended.content) == (
        "openai",
        "gpt-4o-mini",
        "Hello, world!",
    )
    (started,) = h.of(ChatStarted)
    assert (started.provider, started.model) == ("openai", "gpt-4o-mini")
    (notice,) = h.of(Notice)
    assert notice.text.startswith(f"ollama:llama3.2 failed (cannot reach Ollama at {dead_url}")
    assert notice.text.endswith("; answered by openai:gpt-4o-mini")
    order = [type(e) for e in h.events]
    assert order.index(Notice) < order.index(ChatStarted) < order.index(TokenDelta)
    assert h.time.sleeps == [0.25, 0.5]  # the dead host was retried first, as configured


async def test_no_fallback_tries_only_the_model_asked_for(
    make: Callable[..., Harness], dead_url: str, keyed_openai: FakeOpenAI
) -> None:
    h = make(
        providers=providers([dead_url], keyed_openai),
        fallback=["openai:gpt-4o-mini"],
        retry={"attempts": 1},
    )
    ended = await h.ask(fallback=False)
    assert isinstance(ended, ChatFailed)
    assert ended.kind == "unreachable"
    assert keyed_openai.chat_requests == []


async def test_unknown_model_falls_back_without_retrying(
    make: Callable[..., Harness], ollama: FakeOllama, keyed_openai: FakeOpenAI
) -> None:
    h = make(
        providers=providers([ollama.url], keyed_openai),
        aliases={"fast": "ollama:mistral"},
        fallbacks={"fast": ["openai:gpt-4o"]},
    )
    ended = await h.ask("fast")
    assert isinstance(ended, ChatFinished)
    assert ended.model == "gpt-4o"
    assert len(ollama.chat_requests) == 1
    assert "ollama pull mistral" in h.of(Notice)[0].text


async def test_first_token_timeout_goes_to_the_fallback_without_retry(
    make: Callable[..., Harness], ollama: FakeOllama, keyed_openai: FakeOpenAI
) -> None:
    ollama.queue(Reply(first_byte_delay=30))
    h = make(
        providers=providers([ollama.url], keyed_openai),
        fallback=["openai:gpt-4o-mini"],
        timeouts={"first_token": 0.3},
    )
    ended = await h.ask()
    assert isinstance(ended, ChatFinished)
    assert ended.provider == "openai"
    assert len(ollama.chat_requests) == 1
    assert "first token" in h.of(Notice)[0].text


async def test_when_every_model_fails_the_first_error_is_the_answer(
    make: Callable[..., Harness], dead_url: str, openai_server: FakeOpenAI
) -> None:
    h = make(
        providers=providers([dead_url], openai_server),
        fallback=["openai:gpt-4o-mini"],
        retry={"attempts": 1},
    )
    ended = await h.ask()
    assert isinstance(ended, ChatFailed)
    assert ended.kind == "unreachable"
    assert (ended.provider, ended.model) == ("ollama", "llama3.2")
    (notice,) = h.of(Notice)
    assert notice.text.startswith("fallback openai:gpt-4o-mini failed too (")
    assert h.of(ChatStarted) == []


async def test_a_circuit_opening_mid_request_moves_on_without_waiting(
    make: Callable[..., Harness], dead_url: str, keyed_openai: FakeOpenAI
) -> None:
    h = make(
        providers=providers([dead_url], keyed_openai),
        fallback=["openai:gpt-4o-mini"],
        retry={"attempts": 5},
        breaker={"failures": 2},
    )
    ended = await h.ask()
    assert isinstance(ended, ChatFinished)
    assert h.time.sleeps == [0.25]  # one backoff, then the circuit opened
    assert "cannot reach Ollama" in h.of(Notice)[0].text  # the real reason, not the circuit


async def test_a_long_answer_arrives_whole_and_in_order(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    # More pieces than the manager keeps before joining them, and a partial last chunk.
    pieces = [f"{i:04d}é " for i in range(1000)]
    ollama.queue(Reply(pieces=pieces))
    harness = make(providers=providers([ollama.url]))
    ended = await harness.ask("ollama:llama3.2")
    assert isinstance(ended, ChatFinished)
    assert ended.content == "".join(pieces)
    assert [e.text for e in harness.of(TokenDelta)] == pieces
