"""Event bus (issue 7, target 5): publish-to-delivery rate of small events, and their memory.

Each figure is events per CPU-second (``time.process_time``), median of several
rounds, and counts building the event as the model manager does for every piece
of an answer (``TokenDelta(request_id, text)``) and handing it to the subscriber.
The manager hands each piece over with ``EventBus.send`` and awaits what it returns
(nothing, when the subscribers are plain functions); ``await EventBus.publish``, the
path of every other event, is reported beside it. In the same run: building the
events with no bus at all, a dict-of-lists synchronous dispatch, and an
``asyncio.Queue`` producer/consumer. Memory per queued event is measured with
``tracemalloc`` over events held in an ``asyncio.Queue``. Targets: sync ≥ 1.8 M/s, async ≥ 1 M/s.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from cortan.core.events import TokenDelta
from cortan.engine.bus import EventBus
from tests.benchmarks.measure import Figure, median, report

N = 200_000
ROUNDS = 9
TEXT = "abcd"


def rates(cases: dict[str, Callable[[int], object]], n: int, rounds: int) -> dict[str, float]:
    """Median events per CPU-second of each case, the cases run round-robin so noise hits all."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():
        run(n // 10)  # warm up
    for _ in range(rounds):
        for name, run in cases.items():
            start = time.process_time()
            run(n)
            times[name].append(time.process_time() - start)
    return {name: n / median(ts) for name, ts in times.items()}


def build_only(n: int) -> None:
    for i in range(n):
        TokenDelta(i, TEXT)


def sink() -> deque[TokenDelta]:
    """Where subscribers put events: keeps the last one only, as a renderer keeps none."""
    return deque(maxlen=1)


def dict_of_lists(n: int) -> None:
    seen = sink()
    handlers: dict[type[Any], list[Callable[[Any], None]]] = {TokenDelta: [seen.append]}
    for i in range(n):
        event = TokenDelta(i, TEXT)
        for handler in handlers[type(event)]:
            handler(event)
    assert seen[0].request_id == n - 1


def bus_sync(n: int, deliver: Callable[[EventBus, int], Any]) -> None:
    bus = EventBus()
    seen = sink()
    bus.subscribe(TokenDelta, seen.append)
    asyncio.run(deliver(bus, n))
    assert seen[0].request_id == n - 1


def bus_async(n: int, deliver: Callable[[EventBus, int], Any]) -> None:
    bus = EventBus()
    seen = sink()

    async def handler(event: TokenDelta) -> None:
        seen.append(event)

    bus.subscribe(TokenDelta, handler)
    asyncio.run(deliver(bus, n))
    assert seen[0].request_id == n - 1


async def _send(bus: EventBus, n: int) -> None:
    """As the model manager hands over each piece of an answer."""
    send = bus.send
    for i in range(n):
        if (pending := send(TokenDelta(i, TEXT))) is not None:
            await pending


async def _publish(bus: EventBus, n: int) -> None:
    publish = bus.publish
    for i in range(n):
        await publish(TokenDelta(i, TEXT))


def queue_pair(n: int) -> None:
    async def main() -> None:
        queue: asyncio.Queue[TokenDelta | None] = asyncio.Queue()
        seen = sink()

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
        assert seen[0].request_id == n - 1

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


def main(n: int = N, rounds: int = ROUNDS) -> dict[str, Any]:
    cases: dict[str, Callable[[int], object]] = {
        "build": build_only,
        "dict": dict_of_lists,
        "queue": queue_pair,
        "sync": partial(bus_sync, deliver=_send),
        "async": partial(bus_async, deliver=_send),
        "sync publish": partial(bus_sync, deliver=_publish),
        "async publish": partial(bus_async, deliver=_publish),
    }
    got = {name: r / 1e6 for name, r in rates(cases, n, rounds).items()}
    unit = "M ev/s"
    figures = [
        Figure("build the events, no bus", got["build"], unit),
        Figure("dict-of-lists sync dispatch", got["dict"], unit),
        Figure("asyncio.Queue producer/consumer", got["queue"], unit),
        Figure(
            "EventBus.send, one plain subscriber",
            got["sync"],
            unit,
            target=1.8,
            higher_is_better=True,
        ),
        Figure(
            "EventBus.send, one async def subscriber",
            got["async"],
            unit,
            target=1.0,
            higher_is_better=True,
        ),
        Figure("await EventBus.publish, one plain subscriber", got["sync publish"], unit),
        Figure("await EventBus.publish, one async def subscriber", got["async publish"], unit),
        # The rates follow the machine's speed; these ratios hold from run to run.
        Figure("EventBus plain, beside no bus", got["sync"], unit, got["build"], "no bus"),
        Figure("EventBus plain, beside dict-of-lists", got["sync"], unit, got["dict"], "dict"),
        Figure("memory per event in an asyncio.Queue", bytes_per_queued_event(), "B", target=100),
    ]
    title = f"event bus: events built and delivered per CPU-second, median of {rounds} x {n:,}"
    return report(title, figures, events=n, rounds=rounds)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else N)
