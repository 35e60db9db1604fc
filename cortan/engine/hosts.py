"""Host pools: the servers behind one provider, and which one a request goes to.

Layer: engine. A provider configured with ``hosts = ["http://a:11434",
"http://b:11434"]`` is served by any of them. Each request picks the least busy
healthy host: fewest requests in flight, ties broken by recent latency (an
exponentially weighted average of time to first token; a host not yet measured
goes first, so every host gets measured), then by the order in the config. A host
whose circuit is open (:mod:`cortan.engine.breaker`) is skipped; when every host's
circuit is open the caller either moves on (another model can answer) or, with
nothing else to try, takes the host whose cool-down ends first.

Each host takes at most ``capacity`` requests at once (the provider's ``parallel``
setting): :meth:`HostPool.claim` waits for a free slot when every healthy host is
full, so many requests side by side (a batch, a gateway) queue here, in order of
arrival, instead of piling up on a server that answers one at a time. Each host,
and the pool, may carry a rate limiter (:mod:`cortan.engine.limits`).

Hosts of one provider are assumed to serve the same models.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from cortan.core.errors import (
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    UnreachableError,
)
from cortan.engine.breaker import BreakerState, CircuitBreaker
from cortan.engine.limits import RateLimiter
from cortan.providers.base import Provider

#: Failures that say the host is unwell; anything else means it answered.
HOST_TROUBLE = (UnreachableError, ProviderTimeoutError, ServerError, RateLimitedError)
#: Weight of the newest first-token time in a host's latency average.
LATENCY_WEIGHT = 0.3


@dataclass(eq=False, slots=True)
class Host:
    """One server of a provider, with what cortan has seen of it in this process."""

    url: str
    index: int
    breaker: CircuitBreaker
    capacity: int = 1 << 30  # requests at once (the provider's ``parallel``)
    limiter: RateLimiter | None = None  # this host's own limits (``rate_limit.per = "host"``)
    in_flight: int = 0
    latency: float | None = None
    provider: Provider | None = field(default=None, repr=False)
    released: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def is_free(self) -> bool:
        """Whether the host has a slot for one more request now."""
        return self.in_flight < self.capacity

    def observe_latency(self, seconds: float) -> None:
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += LATENCY_WEIGHT * (seconds - self.latency)

    def record(self, error: ProviderError | None) -> None:
        """Tell the breaker how an attempt ended: only host trouble counts as failure."""
        if isinstance(error, HOST_TROUBLE):
            self.breaker.record_failure()
        else:
            self.breaker.record_success()

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """One request to this host: counted in flight, its outcome told to the breaker.

        Cancellation is no verdict on the host: the breaker's trial slot is released.
        """
        self.in_flight += 1
        try:
            yield
        except ProviderError as exc:
            self.record(exc)
            raise
        except BaseException:
            self.breaker.release()
            raise
        else:
            self.record(None)
        finally:
            self.in_flight -= 1
            self.released()

    def sort_key(self) -> tuple[int, float, int]:
        return (self.in_flight, -1.0 if self.latency is None else self.latency, self.index)


class HostState(NamedTuple):
    """A snapshot for ``cortan doctor`` and the REPL's ``/models``."""

    provider: str
    url: str
    state: BreakerState
    failures: int
    in_flight: int
    latency: float | None  # seconds to first token, recent average
    reopens_in: float | None  # seconds until an open circuit allows a trial


class HostPool:
    """The hosts of one provider; providers for them are made on first use."""

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        make_provider: Callable[[str], Provider],
        make_breaker: Callable[[], CircuitBreaker],
        *,
        get_capacity: Callable[[str], int] = lambda url: 1 << 30,
        make_limiter: Callable[[], RateLimiter | None] = lambda: None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.name = name
        self.hosts = [
            Host(url, i, make_breaker(), get_capacity(url), make_limiter(), released=self._wake)
            for i, url in enumerate(urls)
        ]
        self.limiter = limiter  # limits the hosts share (``rate_limit.per = "provider"``)
        self._make_provider = make_provider
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._handing = 0  # slots handed to woken claims that have not run yet

    def get_limiter(self, host: Host) -> RateLimiter | None:
        """The limits a request to ``host`` is held to: the host's own, else the pool's."""
        return host.limiter or self.limiter

    @property
    def capacity(self) -> int:
        """Requests the whole pool takes at once, every host counted."""
        return sum(h.capacity for h in self.hosts)

    async def claim(self, *, avoid: Container[str] = (), force: bool = False) -> Host | None:
        """Claim the best host with a free slot, waiting for one while every host is full.

        None at once when every circuit is open, unless ``force``. The caller enters
        ``host.attempt()`` before its next ``await``, which takes the slot.
        """
        if not self._waiters and not self._handing:  # nobody queued ahead of this one
            host = self.pick(avoid=avoid, force=force)
            if host is not None or not self._is_full(force):
                return host
        first = False
        while True:
            waiter = asyncio.get_running_loop().create_future()
            if first:  # woken, but the slot went elsewhere: keep its place at the front
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.cancelled():  # cancelled while queued
                    with contextlib.suppress(ValueError):  # unless a wake skipped it already
                        self._waiters.remove(waiter)
                else:  # woken, then cancelled: the slot goes to the next in line
                    self._handing -= 1
                    self._wake()
                raise
            self._handing -= 1
            host = self.pick(avoid=avoid, force=force)
            if host is not None or not self._is_full(force):
                return host
            first = True

    def _is_full(self, force: bool) -> bool:
        """Whether the hosts a request may use are all busy (rather than all open)."""
        usable = [h for h in self.hosts if h.breaker.is_available()]
        if not usable and force:
            usable = self.hosts
        return bool(usable) and not any(h.is_free for h in usable)

    def _wake(self) -> None:
        """A slot came free: it is handed to the longest waiting claim.

        Until that claim runs, new claims queue behind it instead of taking the slot
        (``_handing``): first come, first served, however the loop orders wake-ups.
        """
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._handing += 1
                return

    def pick(self, *, avoid: Container[str] = (), force: bool = False) -> Host | None:
        """Claim the best host with a free slot for one attempt, preferring hosts not in
        ``avoid``.

        None when every circuit is open, unless ``force``, or when every usable host is full.
        """
        available = [h for h in self.hosts if h.breaker.is_available()]
        if available:
            free = [h for h in available if h.is_free]
            fresh = [h for h in free if h.url not in avoid] or free
            if not fresh:
                return None
            host = min(fresh, key=Host.sort_key)
            host.breaker.acquire()
            return host
        if not force:
            return None
        free = [h for h in self.hosts if h.is_free]
        if not free:
            return None
        host = min(free, key=lambda h: (h.breaker.reopens_in, h.index))
        host.breaker.acquire(force=True)
        return host

    def has_available(self) -> bool:
        """Whether any host's circuit lets a request through now."""
        return any(h.breaker.is_available() for h in self.hosts)

    def has_fresh(self, avoid: Container[str]) -> bool:
        """Whether a healthy host not in ``avoid`` is left (a failover needs no backoff)."""
        return any(h.breaker.is_available() and h.url not in avoid for h in self.hosts)

    def preferred(self) -> Host:
        """The host a request would pick now, without claiming it."""
        available = [h for h in self.hosts if h.breaker.is_available()]
        return min(available or self.hosts, key=Host.sort_key)

    def ranked(self) -> list[Host]:
        """Every host, best first: healthy ones by load and latency, then by cool-down."""
        return sorted(
            self.hosts,
            key=lambda h: (not h.breaker.is_available(), h.breaker.reopens_in, h.sort_key()),
        )

    def get_provider(self, host: Host) -> Provider:
        if host.provider is None:
            host.provider = self._make_provider(host.url)
        return host.provider

    def describe_open(self) -> str:
        """The sentence for a provider all of whose circuits are open."""
        wait = min(h.breaker.reopens_in for h in self.hosts)
        which = self.hosts[0].url if len(self.hosts) == 1 else "every host"
        return (
            f"{which} of provider {self.name!r} failed repeatedly, so cortan leaves it alone "
            f"for {wait:.0f} s more (circuit open; `cortan doctor` checks it)"
        )

    def states(self) -> list[HostState]:
        return [
            HostState(
                self.name,
                h.url,
                h.breaker.state,
                h.breaker.failures,
                h.in_flight,
                h.latency,
                h.breaker.reopens_in if h.breaker.state is BreakerState.OPEN else None,
            )
            for h in self.hosts
        ]

    async def aclose(self) -> None:
        for host in self.hosts:
            provider, host.provider = host.provider, None
            if provider is not None:
                await provider.aclose()
