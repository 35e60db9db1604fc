"""How many requests each host is sent at once (``parallel``), and how they spread.

Requests run side by side through ``Chat.run`` (as a batch or a gateway runs them)
against fake servers that count what they have outstanding (``peak_in_flight``):
the engine must never send a host more than its ``parallel``, must use every
healthy host, and must queue the rest in order of arrival.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cortan.config.settings import ProviderConfig
from cortan.core.events import ChatFinished
from cortan.engine.breaker import BreakerState, CircuitBreaker
from cortan.engine.hosts import HostPool
from tests.engine.harness import Harness, providers
from tests.servers import FakeOllama, FakeOpenAI, Reply

SLOW = Reply(pieces=["a", "b", "c"], delay=0.03)


def test_defaults_follow_what_each_kind_of_server_takes() -> None:
    assert ProviderConfig(kind="ollama").get_parallel("http://127.0.0.1:11434") == 1
    assert ProviderConfig(kind="openai").get_parallel("https://api.openai.com/v1") == 4
    config = ProviderConfig(kind="ollama", hosts=["gpu:11434", "cpu:11434"], parallel={"gpu": 4})
    assert config.get_parallel("http://gpu:11434") == 4
    assert config.get_parallel("http://cpu:11434") == 1
    assert ProviderConfig(kind="openai", parallel=16).get_parallel("x") == 16


async def test_one_host_is_never_sent_more_than_its_parallel(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    ollama.default = SLOW
    found = providers([ollama.url])
    found["ollama"]["parallel"] = 2
    h = make(providers=found)
    ended = await asyncio.gather(*(h.ask() for _ in range(7)))
    assert all(isinstance(e, ChatFinished) for e in ended)
    assert ollama.peak_in_flight == 2
    assert len(ollama.chat_requests) == 7


async def test_the_default_for_ollama_is_one_at_a_time(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    ollama.default = SLOW
    h = make(providers=providers([ollama.url]))
    await asyncio.gather(*(h.ask() for _ in range(4)))
    assert ollama.peak_in_flight == 1


async def test_requests_spread_over_every_host_up_to_each_ones_parallel(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    ollama.default = SLOW
    with FakeOllama() as big:
        big.default = SLOW
        found = providers([ollama.url, big.url])
        found["ollama"]["parallel"] = {ollama.url: 1, big.url: 3}
        h = make(providers=found)
        assert h.manager.get_capacity([None]) == 4
        await asyncio.gather(*(h.ask() for _ in range(16)))
        assert (ollama.peak_in_flight, big.peak_in_flight) == (1, 3)
        assert len(ollama.chat_requests) + len(big.chat_requests) == 16
        assert len(big.chat_requests) > len(ollama.chat_requests)


async def test_a_dead_host_is_skipped_and_its_requests_answered_elsewhere(
    make: Callable[..., Harness], ollama: FakeOllama, dead_url: str
) -> None:
    ollama.default = SLOW
    found = providers([dead_url, ollama.url])
    found["ollama"]["parallel"] = 2
    h = make(providers=found, breaker={"failures": 2})
    ended = await asyncio.gather(*(h.ask() for _ in range(8)))
    assert all(isinstance(e, ChatFinished) for e in ended), ended
    assert len(ollama.chat_requests) == 8
    assert ollama.peak_in_flight <= 2
    assert h.host(dead_url).state is BreakerState.OPEN


async def test_capacity_counts_the_fallbacks_providers(
    make: Callable[..., Harness], ollama: FakeOllama, openai_server: FakeOpenAI
) -> None:
    h = make(
        providers=providers([ollama.url], openai_server),
        fallback=["openai:gpt-4o-mini"],
    )
    assert h.manager.get_capacity([None]) == 1 + 4
    assert h.manager.get_capacity(["ollama:llama3.2"]) == 5


async def test_waiting_claims_are_served_in_order_of_arrival() -> None:
    pool = HostPool(
        "p",
        ["http://h"],
        make_provider=lambda url: None,  # type: ignore[arg-type, return-value]
        make_breaker=lambda: CircuitBreaker(failures=3, cooldown=30, clock=lambda: 0.0),
        get_capacity=lambda url: 1,
    )
    served: list[int] = []
    first = await pool.claim()
    assert first is not None

    async def claim(n: int) -> None:
        host = await pool.claim()
        assert host is not None
        with host.attempt():
            served.append(n)
            await asyncio.sleep(0)

    with first.attempt():
        waiting = [asyncio.create_task(claim(n)) for n in range(5)]
        await asyncio.sleep(0.01)
        assert served == []  # the one slot is taken
    await asyncio.gather(*waiting)
    assert served == [0, 1, 2, 3, 4]


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    pool = HostPool(
        "p",
        ["http://h"],
        make_provider=lambda url: None,  # type: ignore[arg-type, return-value]
        make_breaker=lambda: CircuitBreaker(failures=3, cooldown=30, clock=lambda: 0.0),
        get_capacity=lambda url: 1,
    )
    host = await pool.claim()
    assert host is not None
    with host.attempt():
        gone = asyncio.create_task(pool.claim())
        kept = asyncio.create_task(pool.claim())
        await asyncio.sleep(0.01)
        gone.cancel()
    got = await asyncio.wait_for(kept, 1)
    assert got is host
    assert gone.cancelled()


async def test_one_connection_serves_request_after_request(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    # Ollama's stream is read to its end after the final message: the connection goes
    # back to the pool instead of being dropped (a new TCP connection per batch item).
    h = make(providers=providers([ollama.url]))
    for _ in range(5):
        assert isinstance(await h.ask(), ChatFinished)
    assert len(ollama.chat_requests) == 5
    assert ollama.connections == 1
