"""Host pools: the servers behind one provider, and which one a request goes to.

Layer: engine. A provider configured with ``hosts = ["http://a:11434",
"http://b:11434"]`` is served by any of them. Each request picks the least busy
healthy host: fewest requests in flight, ties broken by recent latency (an
exponentially weighted average of time to first token; a host not yet measured
goes first, so every host gets measured), then by the order in the config. A host
whose circuit is open (:mod:`cortan.engine.breaker`) is skipped; when every host's
circuit is open the caller either moves on (another model can answer) or, with
nothing else to try, takes the host whose cool-down ends first.

Hosts of one provider are assumed to serve the same models.
"""

from __future__ import annotations

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
    in_flight: int = 0
    latency: float | None = None
    provider: Provider | None = field(default=None, repr=False)

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
    ) -> None:
        self.name = name
        self.hosts = [Host(url, i, make_breaker()) for i, url in enumerate(urls)]
        self._make_provider = make_provider

    def pick(self, *, avoid: Container[str] = (), force: bool = False) -> Host | None:
        """Claim the best host for one attempt, preferring hosts not in ``avoid``.

        None when every circuit is open, unless ``force``.
        """
        available = [h for h in self.hosts if h.breaker.is_available()]
        if available:
            fresh = [h for h in available if h.url not in avoid] or available
            host = min(fresh, key=Host.sort_key)
            host.breaker.acquire()
            return host
        if not force:
            return None
        host = min(self.hosts, key=lambda h: (h.breaker.reopens_in, h.index))
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
