"""Back-pressure: a bounded queue in front of each upstream provider, sized to its hosts.

Layer: serve. A provider's hosts answer so many requests at once
(``serve.streams_per_host``, or ``serve.host_streams[NAME]``, times its hosts);
requests beyond that wait in a queue of ``serve.queue_per_host`` per host, served
first come first served as answers finish. Beyond the queue a request is refused at
once with 429 and a ``Retry-After`` from how long answers on that provider have been
taking: a client told when to come back beats one left waiting with no end.

The lane is chosen by the first model of the request's chain (its fallbacks may
take it elsewhere, which the engine's breakers then govern). Requests whose model
does not resolve pass without a lane: the engine refuses them with one sentence.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from cortan.core.errors import BusyError

if TYPE_CHECKING:
    from cortan.config.settings import Settings

#: Weight of the newest answer's duration in a lane's average.
DURATION_WEIGHT = 0.2
MAX_RETRY_AFTER = 60


def make_queue_full(provider: str, retry_after: int) -> BusyError:
    """The refusal of a request that finds every host busy and the queue full."""
    error = BusyError(
        f"every host of provider {provider!r} is busy and its queue is full: "
        f"try again in {retry_after} s",
        retry_after,
    )
    error.kind = "queue_full"
    return error


class LaneState(NamedTuple):
    """One lane at a glance, for /metrics."""

    provider: str
    active: int
    waiting: int
    capacity: int


class Lane:
    """One provider's slots (answers at once) and its bounded queue of waiting requests."""

    def __init__(self, provider: str, slots: int, queue: int) -> None:
        self.provider = provider
        self.slots = slots
        self.queue = queue
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._duration = 1.0  # seconds an answer takes, recent average

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def enter(self) -> asyncio.Future[None] | None:
        """Take a slot (None), or a place in the queue (a future to await), or raise."""
        if self.active < self.slots and not self._waiting:
            self.active += 1
            return None
        if len(self._waiting) >= self.queue:
            raise make_queue_full(self.provider, self.retry_after())
        place = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        return place

    def leave(self, place: asyncio.Future[None] | None, seconds: float | None) -> None:
        """Give back the slot (to the first in the queue), or the place never served."""
        if place is not None and not (place.done() and not place.cancelled()):
            if place in self._waiting:  # left the queue before its turn (the client went)
                self._waiting.remove(place)
            return
        if seconds is not None:
            self._duration += DURATION_WEIGHT * (seconds - self._duration)
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes to it, still counted active
                return
        self.active -= 1

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely to be free, 1 to 60."""
        rounds = (len(self._waiting) + 1) / max(self.slots, 1)
        return max(1, min(MAX_RETRY_AFTER, math.ceil(self._duration * rounds)))

    def state(self) -> LaneState:
        return LaneState(self.provider, self.active, len(self._waiting), self.slots)


class Lanes:
    """The lane of every provider, made on first use from the settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lanes: dict[str, Lane] = {}

    def get(self, provider: str) -> Lane:
        lane = self._lanes.get(provider)
        if lane is None:
            serve, config = self._settings.serve, self._settings.providers.get(provider)
            hosts = len(config.get_urls()) if config is not None else 1
            per_host = serve.host_streams.get(provider, serve.streams_per_host)
            lane = self._lanes[provider] = Lane(
                provider, per_host * hosts, serve.queue_per_host * hosts
            )
        return lane

    def states(self) -> list[LaneState]:
        return [lane.state() for lane in self._lanes.values()]
