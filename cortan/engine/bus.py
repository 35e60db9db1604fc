"""The event bus: typed events delivered to their subscribers, in a defined order.

A thin seam, not a framework. Subscribers register for one exact event type,
with a priority (lower runs first; ties run in subscription order). ``publish``
calls each subscriber in turn and awaits the ones that are coroutines before
moving on, so a slow subscriber slows the publisher instead of letting a queue
grow without limit, and events reach every subscriber in the order they were
published. A subscriber that raises is logged and skipped: it never breaks the
others or the request. Cancellation (Ctrl-C) is not an error and passes through.

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
        # The sorted tuple is what publish() reads: no sorting on the hot path.
        entries = sorted(self._subscriptions[event_type], key=lambda e: (e[0], e[1]))
        self._handlers[event_type] = tuple(handler for _, _, handler in entries)

    async def publish(self, event: object) -> None:
        """Deliver ``event`` to each subscriber in order, awaiting coroutine handlers."""
        for handler in self._handlers.get(type(event), ()):
            try:
                result = handler(event)
                if result is not None:
                    await result
            except Exception:
                log.exception("subscriber %r failed on %s", handler, type(event).__name__)
