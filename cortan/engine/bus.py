"""The event bus: typed events delivered to their subscribers, in a defined order.

A thin seam, not a framework. Subscribers register for one exact event type,
with a priority (lower runs first; ties run in subscription order). ``publish``
calls each subscriber in turn and awaits the ones that are coroutines before
moving on, so a slow subscriber slows the publisher instead of letting a queue
grow without limit, and events reach every subscriber in the order they were
published. ``send`` does the same without a coroutine of its own while the
subscribers are plain functions: it carries each piece of an answer. A
subscriber that raises is logged and skipped: it never breaks the others or the
request. Cancellation (Ctrl-C) is not an error and passes through.

There are no wildcard topics, no persistence and no queue: the stream of an
answer stays an async iterator from provider to model manager, which republishes
each piece as an event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

E = TypeVar("E")
Handler = Callable[[E], Awaitable[None] | None]

log = logging.getLogger(__name__)


class EventBus:
    """Deliver events to subscribers by exact type."""

    def __init__(self) -> None:
        self._subscriptions: dict[type[Any], list[tuple[int, int, Handler[Any]]]] = {}
        self._handlers: dict[type[Any], tuple[Handler[Any], ...]] = {}
        self._count = 0

    def subscribe(
        self, event_type: type[E], handler: Handler[E], *, priority: int = 0
    ) -> Callable[[], None]:
        """Call ``handler`` for every ``event_type`` published; returns an unsubscribe."""
        self._count += 1
        entry = (priority, self._count, handler)
        self._subscriptions.setdefault(event_type, []).append(entry)
        self._rebuild(event_type)

        def unsubscribe() -> None:
            entries = self._subscriptions.get(event_type, [])
            if entry in entries:
                entries.remove(entry)
                self._rebuild(event_type)

        return unsubscribe

    def _rebuild(self, event_type: type[Any]) -> None:
        # The sorted tuple is what send() reads: no sorting on the hot path.
        entries = sorted(self._subscriptions[event_type], key=lambda e: (e[0], e[1]))
        self._handlers[event_type] = tuple(handler for _, _, handler in entries)

    def send(self, event: object) -> Awaitable[None] | None:
        """Deliver ``event`` to its plain subscribers now; return what is left to await.

        The publisher's hot path (one ``TokenDelta`` per piece of an answer): while the
        subscribers are plain functions, delivery is this one call and nothing is
        awaited. When one returns an awaitable, the rest of the delivery comes back as
        one to await, so order and back-pressure are as with ``publish``.
        """
        return _deliver(self._handlers.get(type(event), ()), event)

    async def publish(self, event: object) -> None:
        """Deliver ``event`` to each subscriber in order, awaiting coroutine handlers."""
        if (pending := self.send(event)) is not None:
            await pending


def _deliver(handlers: tuple[Handler[Any], ...], event: object) -> Awaitable[None] | None:
    """Call ``handlers`` in order until one returns an awaitable; the rest waits on it."""
    done = 0
    for handler in handlers:
        done += 1
        try:
            result = handler(event)
        except Exception:
            _failed(handler, event)
            continue
        if result is not None:
            return _finish(result, handler, event, handlers[done:])
    return None


async def _finish(
    pending: Awaitable[None], handler: Handler[Any], event: object, rest: tuple[Handler[Any], ...]
) -> None:
    """Await what ``handler`` returned, then deliver to the ``rest`` in order."""
    try:
        await pending
    except Exception:
        _failed(handler, event)
    if (more := _deliver(rest, event)) is not None:
        await more


def _failed(handler: Handler[Any], event: object) -> None:
    log.exception("subscriber %r failed on %s", handler, type(event).__name__)
