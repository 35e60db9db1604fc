"""Event bus (issue 7, target 5): publish-to-delivery rate of small events, and their memory.

Each figure is events per CPU-second (``time.process_time``), median of several
rounds, and counts building the event as the model manager does for every piece
of an answer (``TokenDelta(request_id, text)``) and handing it to the subscriber.
Beside cortan's ``EventBus`` with one plain and one ``async def`` subscriber, in
the same run: building the events with no bus at all, a dict-of-lists
synchronous dispatch, and an ``asyncio.Queue`` producer/consumer. Memory per
queued event is measured with ``tracemalloc`` over events held in an
``asyncio.Queue``. Targets: sync ≥ 1.8 M/s, async ≥ 1 M/s.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from cortan.engine.bus import EventBus
from cortan.engine.events import TokenDelta
from tests.benchmarks.measure import Figure, median, report

N = 200_000
ROUNDS = 7
TEXT = "abcd"


def rate(run: Callable[[int], object], n: int = N, rounds: int = ROUNDS) -> float:
    """Median events per CPU-second of ``run(n)`` over ``rounds`` (GC left on, as in use)."""
    run(n // 10)  # warm up
    times = []
    for _ in range(rounds):
        start = time.process_time()
        run(n)
        times.append(time.process_time() - start)
    return n / median(times)


def build_only(n: int) -> None:
    for i in range(n):
        TokenDelta(i, TEXT)


def dict_of_lists(n: int) -> None:
    seen: list[object] = []
    handlers: dict[type[Any], list[Callable[[Any], None]]] = {TokenDelta: [seen.append]}
    for i in range(n):
        event = TokenDelta(i, TEXT)
        for handler in handlers[type(event)]:
            handler(event)


def bus_sync(n: int) -> None:
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe(TokenDelta, seen.append)
    asyncio.run(_publish(bus, n))
    assert len(seen) == n


def bus_async(n: int) -> None:
    bus = EventBus()
    seen: list[object] = []

    async def handler(event: TokenDelta) -> None:
        seen.append(event)

    bus.subscribe(TokenDelta, handler)
    asyncio.run(_publish(bus, n))
    assert len(seen) == n


async def _publish(bus: EventBus, n: int) -> None:
    publish = bus.publish
    for i in range(n):
        await publish(TokenDelta(i, TEXT))


def queue_pair(n: int) -> None:
    async def main() -> None:
        queue: asyncio.Queue[TokenDelta | None] = asyncio.Queue()
        seen: list[object] = []

        async def consume() -> None:
            while (event := await queue.get()) is not None:
                seen.append(event)

        consumer = asyncio.create_task(consume())
        for i in range(n):
            queue.put_nowait(TokenDelta(i, TEXT))
            if i % 64 == 0:
                await asyncio.sleep(0)  # let the consumer run, as a real producer would
        queue.put_nowait(None)
        await consumer
        assert len(seen) == n

    asyncio.run(main())


def bytes_per_queued_event(n: int = 100_000) -> float:
    """Bytes traced per event waiting in an asyncio.Queue (event object + queue slot)."""
    queue: asyncio.Queue[TokenDelta] = asyncio.Queue()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1000, 1000 + n):
        queue.put_nowait(TokenDelta(i, TEXT))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


def main(n: int = N) -> dict[str, Any]:
    m = 1e6
    built = rate(build_only, n) / m
    figures = [
        Figure("build the events, no bus", built, "M ev/s"),
        Figure("dict-of-lists sync dispatch", rate(dict_of_lists, n) / m, "M ev/s"),
        Figure("asyncio.Queue producer/consumer", rate(queue_pair, n) / m, "M ev/s"),
        Figure(
            "EventBus, one plain subscriber",
            rate(bus_sync, n) / m,
            "M ev/s",
            target=1.8,
            higher_is_better=True,
        ),
        Figure(
            "EventBus, one async def subscriber",
            rate(bus_async, n) / m,
            "M ev/s",
            target=1.0,
            higher_is_better=True,
        ),
        Figure("memory per event in an asyncio.Queue", bytes_per_queued_event(), "B", target=100),
    ]
    return report(f"event bus: events per CPU-second, median of {ROUNDS} rounds of {n:,}", figures)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else N)
