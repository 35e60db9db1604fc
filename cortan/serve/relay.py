"""One request's outcomes on their way to its client: a small bounded channel.

Layer: serve. The engine publishes a request's outcomes on the bus; the
composition root hands this request's to its :class:`Relay` (a
:class:`cortan.serve.services.Watcher`). The response writer takes them out in
batches (everything that arrived while it was writing the last one goes into one
write), and the ending arrives last, with :meth:`Relay.end`.

Back-pressure: past ``limit`` pieces waiting, ``on_delta`` returns an awaitable and
the engine waits on it before it reads on from upstream, so a client that reads
slowly slows its own answer instead of growing the gateway's memory. One that stops
reading holds it only ``serve.write_timeout`` (stall.py), then is taken for gone.

Items are ``(kind, value)``: ``("text", str)``, ``("thinking", str)`` (a thinking
model's reasoning, issue 16), ``("started", ChatStarted)``, ``("notice", str)``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from cortan.serve.notices import Notices

if TYPE_CHECKING:
    from cortan.core.events import ChatEnded, ChatStarted, Notice, ThinkingDelta, TokenDelta

Item = tuple[str, object]
#: Pieces held for a slow client before the engine is made to wait.
LIMIT = 256


class Relay:
    """A bounded queue of one request's outcomes, then its ending."""

    __slots__ = ("_items", "_limit", "_room", "_waiter", "ended", "notices", "started")

    def __init__(self, limit: int = LIMIT) -> None:
        self._items: deque[Item] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None  # the writer, waiting for items
        self._room: asyncio.Future[None] | None = None  # the engine, waiting for room
        self.started: ChatStarted | None = None
        self.ended: ChatEnded | None = None
        self.notices = Notices()  # kept for the final chunk and the access log

    # -- the engine's side (a Watcher) ---------------------------------------------------

    def on_started(self, event: ChatStarted) -> None:
        self.started = event
        self._push(("started", event))

    def on_delta(self, event: TokenDelta) -> asyncio.Future[None] | None:
        self._push(("text", event.text))
        if len(self._items) < self._limit:
            return None
        if self._room is None or self._room.done():
            self._room = asyncio.get_running_loop().create_future()
        return self._room

    def on_thinking(self, event: ThinkingDelta) -> None:
        self._push(("thinking", event.text))

    def on_notice(self, event: Notice) -> None:
        self.notices.on_notice(event)
        self._push(("notice", event.text))

    def end(self, ended: ChatEnded) -> None:
        """The request is over: the writer sends what is left, then the ending."""
        self.ended = ended
        self._wake()

    def _push(self, item: Item) -> None:
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the writer's side ---------------------------------------------------------------

    async def take(self) -> list[Item]:
        """Everything waiting (at least one item), or [] once the request has ended."""
        while not self._items:
            if self.ended is not None:
                return []
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        items = list(self._items)
        self._items.clear()
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)
        return items
