"""The event bus's promises: order, isolation, awaiting, unsubscribing, cancellation."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from cortan.engine.bus import EventBus


@dataclass(frozen=True, slots=True)
class Ping:
    n: int


@dataclass(frozen=True, slots=True)
class Pong:
    n: int


@dataclass(frozen=True, slots=True)
class LoudPing(Ping):
    pass


async def test_priority_then_subscription_order() -> None:
    bus, calls = EventBus(), []
    bus.subscribe(Ping, lambda e: calls.append("b0"))
    bus.subscribe(Ping, lambda e: calls.append("late"), priority=10)
    bus.subscribe(Ping, lambda e: calls.append("first"), priority=-5)
    bus.subscribe(Ping, lambda e: calls.append("b1"))
    await bus.publish(Ping(1))
    assert calls == ["first", "b0", "b1", "late"]


async def test_events_go_only_to_subscribers_of_their_exact_type() -> None:
    bus, calls = EventBus(), []
    bus.subscribe(Ping, lambda e: calls.append(("ping", e.n)))
    bus.subscribe(Pong, lambda e: calls.append(("pong", e.n)))
    await bus.publish(Pong(1))
    await bus.publish(LoudPing(2))  # a subclass is a different topic: no wildcards
    await bus.publish(Ping(3))
    assert calls == [("pong", 1), ("ping", 3)]


async def test_publish_with_no_subscriber_is_a_no_op() -> None:
    await EventBus().publish(Ping(1))


async def test_coroutine_handlers_are_awaited_in_order() -> None:
    bus, calls = EventBus(), []

    async def slow(event: Ping) -> None:
        calls.append("slow start")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        calls.append("slow end")

    bus.subscribe(Ping, slow)
    bus.subscribe(Ping, lambda e: calls.append("after"))
    await bus.publish(Ping(1))
    assert calls == ["slow start", "slow end", "after"]


async def test_a_failing_handler_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus, calls = EventBus(), []

    def broken(event: Ping) -> None:
        raise ValueError("boom")

    async def broken_later(event: Ping) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("late boom")

    bus.subscribe(Ping, broken)
    bus.subscribe(Ping, broken_later)
    bus.subscribe(Ping, lambda e: calls.append(e.n))
    with caplog.at_level(logging.ERROR, logger="cortan.engine.bus"):
        await bus.publish(Ping(7))
    assert calls == [7]
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [ValueError, RuntimeError]
    assert all("Ping" in r.getMessage() for r in caplog.records)


async def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    bus, calls = EventBus(), []
    stop_a = bus.subscribe(Ping, lambda e: calls.append("a"))
    bus.subscribe(Ping, lambda e: calls.append("b"))
    await bus.publish(Ping(1))
    stop_a()
    stop_a()
    await bus.publish(Ping(2))
    assert calls == ["a", "b", "b"]


async def test_the_same_handler_twice_is_two_subscriptions() -> None:
    bus, calls = EventBus(), []

    def handler(event: Ping) -> None:
        calls.append(event.n)

    stop_first = bus.subscribe(Ping, handler)
    bus.subscribe(Ping, handler)
    await bus.publish(Ping(1))
    stop_first()
    await bus.publish(Ping(2))
    assert calls == [1, 1, 2]


async def test_subscribing_during_publish_takes_effect_from_the_next_event() -> None:
    bus, calls = EventBus(), []

    def first(event: Ping) -> None:
        calls.append(("first", event.n))
        if event.n == 1:
            bus.subscribe(Ping, lambda e: calls.append(("new", e.n)))

    bus.subscribe(Ping, first)
    await bus.publish(Ping(1))
    await bus.publish(Ping(2))
    assert calls == [("first", 1), ("first", 2), ("new", 2)]


async def test_cancellation_raised_by_a_handler_passes_through() -> None:
    bus, calls = EventBus(), []

    def cancel(event: Ping) -> None:
        raise asyncio.CancelledError

    bus.subscribe(Ping, cancel)
    bus.subscribe(Ping, lambda e: calls.append("after"))
    with pytest.raises(asyncio.CancelledError):
        await bus.publish(Ping(1))
    assert calls == []


async def test_cancelling_the_publisher_cancels_the_awaited_handler() -> None:
    bus, calls = EventBus(), []
    entered = asyncio.Event()

    async def waits(event: Ping) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            calls.append("handler cancelled")
            raise

    bus.subscribe(Ping, waits)
    bus.subscribe(Ping, lambda e: calls.append("after"))
    task = asyncio.create_task(bus.publish(Ping(1)))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == ["handler cancelled"]


async def test_keyboard_interrupt_is_not_swallowed() -> None:
    bus = EventBus()

    def interrupt(event: Ping) -> None:
        raise KeyboardInterrupt

    bus.subscribe(Ping, interrupt)
    with pytest.raises(KeyboardInterrupt):
        await bus.publish(Ping(1))


async def test_send_delivers_to_plain_subscribers_at_once() -> None:
    bus, calls = EventBus(), []
    bus.subscribe(Ping, lambda e: calls.append(("a", e.n)))
    bus.subscribe(Ping, lambda e: calls.append(("b", e.n)))
    assert bus.send(Ping(1)) is None
    assert bus.send(Pong(2)) is None  # nobody listens
    assert calls == [("a", 1), ("b", 1)]


async def test_send_returns_the_rest_of_the_delivery_from_the_first_coroutine() -> None:
    bus, calls = EventBus(), []

    async def slow(event: Ping) -> None:
        calls.append("slow start")
        await asyncio.sleep(0)
        calls.append("slow end")

    bus.subscribe(Ping, lambda e: calls.append("first"))
    bus.subscribe(Ping, slow)
    bus.subscribe(Ping, lambda e: calls.append("last"))
    pending = bus.send(Ping(1))
    assert calls == ["first"]  # the coroutine and what follows it wait for the await
    assert pending is not None
    await pending
    assert calls == ["first", "slow start", "slow end", "last"]


async def test_send_logs_a_failing_subscriber_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus, calls = EventBus(), []

    def broken(event: Ping) -> None:
        raise ValueError("boom")

    async def broken_later(event: Ping) -> None:
        raise RuntimeError("late boom")

    bus.subscribe(Ping, broken)
    assert bus.send(Ping(1)) is None  # one subscriber, failing: nothing to await
    bus.subscribe(Ping, broken_later)
    bus.subscribe(Ping, lambda e: calls.append(e.n))
    with caplog.at_level(logging.ERROR, logger="cortan.engine.bus"):
        pending = bus.send(Ping(2))
        assert pending is not None
        await pending
    assert calls == [2]
    assert "boom" in caplog.text and "late boom" in caplog.text
