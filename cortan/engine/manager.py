"""The model manager: names, providers and hosts, and the answers they give as events.

Layer: engine; the route stage of ``Chat.run``. It resolves names
(:mod:`cortan.engine.routes`) into fallback chains, keeps one host pool per provider
with a circuit breaker per host (:mod:`cortan.engine.hosts`), and lists models. Each
answer's way through its chain, with retries, is
:class:`cortan.engine.answering.Answerer`'s job; the manager publishes nothing but
what the answerer republishes from the stream (started, pieces, notices).

Breakers, latencies and providers live as long as this object, which is as long as
the process: across the prompts of a REPL session, not across ``cortan ask`` runs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, TypeVar

from cortan.core.errors import ProviderError, UsageError
from cortan.core.events import ChatFailed, ChatFinished
from cortan.core.messages import ModelInfo, PullProgress
from cortan.core.recent import Recent
from cortan.core.startup import resume_collector
from cortan.engine.answering import Answerer, Progress
from cortan.engine.breaker import CircuitBreaker
from cortan.engine.bus import EventBus
from cortan.engine.hosts import Host, HostPool, HostState
from cortan.engine.limits import RateLimiter
from cortan.engine.routes import Route, Router
from cortan.providers import get_factory
from cortan.providers.base import ModelRequest, Provider, Puller
from cortan.providers.responses import BodyLimits

if TYPE_CHECKING:
    from cortan.config.settings import Settings

__all__ = ["ModelManager", "Route", "body_limits"]

T = TypeVar("T")

#: Room around one piece of answer on the wire: its JSON or SSE framing.
FRAMING_BYTES = 64 << 10


def body_limits(settings: Settings) -> BodyLimits:
    """What a server may send back, decoded (docs/security.md, decompression bombs)."""
    output = settings.max_output_bytes
    return BodyLimits(
        answer=settings.max_response_bytes or 16 * output,
        piece=output + FRAMING_BYTES,
        listing=settings.max_listing_bytes,
    )


class ModelManager:
    """Routes requests to providers and turns their streams into events.

    ``clock``, ``sleep`` and ``jitter`` (uniform in [0, 1)) are the seams for time and
    chance: tests pass their own so that backoff and cool-downs run without waiting.
    """

    def __init__(
        self,
        bus: EventBus,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        concurrent: bool = False,
    ) -> None:
        self._settings = settings
        self._concurrent = concurrent  # many requests at once: the providers' fast transport
        self._clock = clock
        self.router = Router(settings)
        self._pools: dict[str, HostPool] = {}
        self._answerer = Answerer(
            bus, settings, self.get_pool, clock=clock, sleep=sleep, jitter=jitter
        )
        # What servers said, per route; bounded, as clients of the gateway name any model.
        self._shown: Recent[str, asyncio.Future[ModelInfo]] = Recent()
        self._digests: dict[str, asyncio.Future[list[ModelInfo]]] = {}  # listings, for digests

    # -- names, providers, hosts -------------------------------------------------------

    def resolve(self, name: str | None) -> Route:
        """The provider and model a user-facing name means."""
        return self.router.resolve(name)

    def get_chain(self, name: str | None, *, fallback: bool = True) -> list[Route]:
        """The models to try for ``name``, in order (raises on a name that does not resolve)."""
        return self.router.get_chain(name, fallback=fallback)

    def get_think(self, name: str | None, route: Route) -> bool | str | None:
        """The configured thinking for ``name`` (its alias, then the model), or None."""
        think = self._settings.think
        for key in (name, str(route), route.model, route.model.removesuffix(":latest")):
            if key is not None and key in think:
                return think[key]
        return None

    def default_provider(self) -> str:
        return self.router.default_provider()

    def get_pool(self, name: str) -> HostPool:
        """The hosts of a configured provider (providers are made on first use)."""
        if name not in self._pools:
            config = self._settings.providers.get(name)
            if config is None:
                raise UsageError(f"no provider named {name!r} is configured")
            timeouts, limits = self._settings.timeouts, self._settings.breaker
            bodies = body_limits(self._settings)

            def make_provider(url: str) -> Provider:
                try:
                    return get_factory(config.kind)(
                        name, url, config, timeouts, bodies, concurrent=self._concurrent
                    )
                finally:  # the SDK, start-up's last large import, is in
                    resume_collector()

            def make_breaker() -> CircuitBreaker:
                return CircuitBreaker(
                    failures=limits.failures, cooldown=limits.cooldown, clock=self._clock
                )

            def make_limiter() -> RateLimiter:
                rate = config.rate_limit
                return RateLimiter(
                    requests_per_minute=rate.requests_per_minute,
                    tokens_per_minute=rate.tokens_per_minute,
                    clock=self._clock,
                )

            per_host = config.rate_limit.per == "host"
            self._pools[name] = HostPool(
                name,
                config.get_urls(),
                make_provider,
                make_breaker,
                get_capacity=config.get_parallel,
                make_limiter=make_limiter if per_host else lambda: None,
                limiter=None if per_host else make_limiter(),
            )
        return self._pools[name]

    def get_capacity(self, names: Sequence[str | None]) -> int:
        """Requests the hosts that may answer these names take at once, fallbacks included.

        What a front end that runs many requests side by side (a batch) keeps going:
        more would only wait for a slot in the pools.
        """
        providers = {route.provider for name in names for route in self.get_chain(name)}
        return sum(self.get_pool(provider).capacity for provider in providers)

    def get_provider(self, name: str) -> Provider:
        """The provider instance for the host a request to ``name`` would use now."""
        pool = self.get_pool(name)
        return pool.get_provider(pool.preferred())

    def pull_model(self, name: str) -> AsyncIterator[PullProgress]:
        """Have the server of ``name``'s provider download it (``cortan models pull``).

        Only a provider whose server pulls (Ollama) can; any other is a UsageError.
        """
        route = self.resolve(name)
        provider = self.get_provider(route.provider)
        if not isinstance(provider, Puller):
            raise UsageError(
                f"{route.provider} is {provider.label}, which cannot download models: "
                "`cortan models pull` works with Ollama providers"
            )
        return provider.pull_model(route.model)

    async def get_window_option(self, route: Route) -> str | None:
        """The request option that sizes the server's window for ``route``, if it takes one.

        The provider's module is loaded first in a worker thread: its libraries (httpx,
        httpx2: tens of milliseconds to import) would hold up the event loop,
        its timers and Ctrl-C, on the path to the first byte (issue 21).
        """
        config = self._settings.providers.get(route.provider)
        if config is not None and route.provider not in self._pools:
            await asyncio.to_thread(get_factory, config.kind)
        return getattr(self.get_provider(route.provider), "window_option", None)

    def host_states(self) -> list[HostState]:
        """Every configured host's circuit, load and latency, as this process saw them."""
        return [
            state for name in self._settings.providers for state in self.get_pool(name).states()
        ]

    async def get_context_length(self, name: str | None) -> int | None:
        """The context window the server reports for the model ``name`` means (cached).

        None when the server does not say (OpenAI's API never does). Errors are raised
        and not cached: the caller decides, and a server that comes back is asked again.
        """
        return (await self.show_model(name)).context_length

    async def show_model(self, name: str | None) -> ModelInfo:
        """What the server says of the model ``name`` means: window, capabilities (cached).

        Asked once however many requests want it at once: a batch's workers all start
        by fitting their prompt, and 4,096 of them each sending ``/api/show`` kept the
        SDK's connection pool busy for minutes, before any item and after Ctrl-C.
        """
        route = self.resolve(name)
        return await asyncio.shield(_once(self._shown, str(route), lambda: self._show(name, route)))

    async def _show(self, name: str | None, route: Route) -> ModelInfo:
        shown = await self.get_provider(route.provider).show_model(route.model)
        for configured in (name, str(route), route.model):  # the config knows better
            if configured is not None and configured in self._settings.capabilities:
                return shown._replace(capabilities=self._settings.capabilities[configured])
        return shown

    async def get_digest(self, route: Route) -> str | None:
        """The digest of ``route``'s model where its server tells it (Ollama), else None.

        Each provider is listed once per process; a listing that fails tells nothing
        and is asked again next time.
        """
        listing = _once(self._digests, route.provider, lambda: self.list_models(route.provider))
        try:
            models = await asyncio.shield(listing)
        except ProviderError:
            return None
        digests = {m.name: m.digest for m in models}
        return digests.get(route.model) or digests.get(f"{route.model}:latest")

    async def list_models(self, provider: str) -> list[ModelInfo]:
        """The models of a provider, from the first of its hosts that answers."""
        pool = self.get_pool(provider)
        error: ProviderError | None = None
        for host in pool.ranked():
            try:
                return await self.list_host_models(pool, host)
            except ProviderError as exc:
                error = exc
        assert error is not None  # a pool has at least one host
        raise error

    async def list_host_models(self, pool: HostPool, host: Host) -> list[ModelInfo]:
        """One host's models, asked even while its circuit is open; the outcome counts."""
        host.breaker.acquire(force=True)
        with host.attempt():
            return await pool.get_provider(host).list_models()

    # -- answering ---------------------------------------------------------------------

    def start(
        self, request_id: int, chain: list[Route], fitted: Collection[str] = (), spent: float = 0.0
    ) -> Progress:
        """A new answer's progress over ``chain`` (see :meth:`answer`); ``fitted``: the
        options cortan set for the first model's window, not for a fallback's; ``spent``:
        what lookups used of the first token's wait (Answerer.start)."""
        return self._answerer.start(request_id, chain, fitted, spent)

    async def answer(self, progress: Progress, request: ModelRequest) -> ChatFinished | ChatFailed:
        """Stream ``request`` from the first model of the chain that can answer."""
        return await self._answerer.answer(progress, request)

    async def aclose(self) -> None:
        for listing in self._digests.values():
            listing.cancel()
        for shown in self._shown.values():
            shown.cancel()
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def _once(
    asked: dict[str, asyncio.Future[T]], key: str, ask: Callable[[], Awaitable[T]]
) -> asyncio.Future[T]:
    """The one call of ``ask`` for ``key``, under way or done, however many wait on it.

    One that failed or was cancelled is forgotten, so the next caller asks again (a
    server that comes back is asked again); waiters shield it, so a caller's own
    timeout does not cancel it for the others.
    """
    found = asked.get(key)
    if found is not None:
        return found
    future = asyncio.ensure_future(ask())

    def forget(done: asyncio.Future[T]) -> None:
        if (done.cancelled() or done.exception() is not None) and asked.get(key) is done:
            del asked[key]

    future.add_done_callback(forget)
    asked[key] = future
    return future
