"""The model manager: resolves a model name to a provider and streams its answer as events.

Names resolve in this order: an alias (``[aliases] fast = "ollama:llama3.2"``),
then ``provider:model`` where ``provider`` is a configured provider, then a bare
model name on the default model's provider (so Ollama's own ``llama3.2:latest``
still means a model, not a provider). Each piece of the answer is republished as
a ``TokenDelta``; exactly one ``ChatFinished``, ``ChatFailed`` or ``ChatCancelled``
ends the request, carrying whatever text arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cortan.engine.bus import EventBus
from cortan.engine.events import (
    ChatCancelled,
    ChatFailed,
    ChatFinished,
    ChatPrepared,
    ChatStarted,
    Timings,
    TokenDelta,
)
from cortan.errors import CortanError, ProviderError, ProviderTimeoutError, UsageError
from cortan.providers import get_factory
from cortan.providers.base import ChatRequest, Finish, ModelInfo, Provider

if TYPE_CHECKING:
    from cortan.config.settings import Settings


@dataclass(frozen=True, slots=True)
class Route:
    """Where a model name leads."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(slots=True)
class _Progress:
    """What has arrived so far for one request."""

    pieces: list[str]
    started: float
    first_token: float | None = None

    @property
    def content(self) -> str:
        return "".join(self.pieces)


class ModelManager:
    """Routes requests to providers and turns their streams into events."""

    def __init__(
        self,
        bus: EventBus,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._settings = settings
        self._providers: dict[str, Provider] = {}
        self._clock = clock
        bus.subscribe(ChatPrepared, self.on_prepared)

    def resolve(self, name: str | None) -> Route:
        """The provider and model a user-facing name means."""
        return self._resolve(name or self._settings.default_model, depth=0)

    def _resolve(self, name: str, depth: int) -> Route:
        if depth > 8:
            raise UsageError(f"alias {name!r} refers to itself in a loop")
        if name in self._settings.aliases:
            return self._resolve(self._settings.aliases[name], depth + 1)
        prefix, sep, rest = name.partition(":")
        if sep and prefix in self._settings.providers:
            if not rest:
                raise UsageError(f"model name {name!r} has a provider but no model")
            return Route(prefix, rest)
        return Route(self.default_provider(), name)

    def default_provider(self) -> str:
        prefix, sep, _ = self._settings.default_model.partition(":")
        return prefix if sep and prefix in self._settings.providers else "ollama"

    def get_provider(self, name: str) -> Provider:
        """The (cached) provider instance for a configured provider name."""
        if name not in self._providers:
            config = self._settings.providers.get(name)
            if config is None:
                raise UsageError(f"no provider named {name!r} is configured")
            factory = get_factory(config.kind)
            url = config.get_urls()[0]
            self._providers[name] = factory(name, url, config, self._settings.timeouts)
        return self._providers[name]

    async def list_models(self, provider: str) -> list[ModelInfo]:
        return await self.get_provider(provider).list_models()

    async def on_prepared(self, event: ChatPrepared) -> None:
        request_id = event.request.request_id
        try:
            route = self.resolve(event.model)
            provider = self.get_provider(route.provider)
        except CortanError as exc:
            await self._fail(request_id, exc, None, None)
            return
        options = dict(event.request.options)
        await self._stream(request_id, route, provider, ChatRequest(route.model, event.messages, options))

    async def _stream(
        self, request_id: int, route: Route, provider: Provider, request: ChatRequest
    ) -> None:
        progress = _Progress([], self._clock())
        await self._bus.publish(ChatStarted(request_id, route.provider, route.model))
        try:
            finish = await self._consume(request_id, provider, request, progress)
        except asyncio.CancelledError:
            await self._bus.publish(
                ChatCancelled(request_id, progress.content, route.provider, route.model)
            )
            raise
        except CortanError as exc:
            await self._fail(request_id, exc, route, progress.content)
            return
        await self._bus.publish(self._finished(request_id, route, progress, finish))

    async def _consume(
        self, request_id: int, provider: Provider, request: ChatRequest, progress: _Progress
    ) -> Finish:
        timeouts = self._settings.timeouts
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeouts.first_token) as deadline:
                async with aclosing(provider.stream_chat(request)) as stream:
                    async for item in stream:
                        if isinstance(item, Finish):
                            return item
                        if progress.first_token is None:
                            progress.first_token = self._clock() - progress.started
                            deadline.reschedule(loop.time() + timeouts.total)
                        progress.pieces.append(item)
                        await self._bus.publish(TokenDelta(request_id, item))
        except TimeoutError:
            which = "first token" if progress.first_token is None else "whole answer"
            limit = timeouts.first_token if progress.first_token is None else timeouts.total
            raise ProviderTimeoutError(
                f"{provider.label} at {provider.url} took longer than {limit:g} s for the {which} "
                f"(timeouts.{'first_token' if progress.first_token is None else 'total'})"
            ) from None
        raise ProviderError(f"{provider.label} at {provider.url} ended the stream without finishing")

    def _finished(
        self, request_id: int, route: Route, progress: _Progress, finish: Finish
    ) -> ChatFinished:
        timings = Timings(progress.first_token, self._clock() - progress.started)
        return ChatFinished(
            request_id,
            route.provider,
            route.model,
            progress.content,
            finish.finish_reason,
            finish.usage,
            timings,
        )

    async def _fail(
        self, request_id: int, exc: CortanError, route: Route | None, content: str | None
    ) -> None:
        kind = exc.kind if isinstance(exc, ProviderError) else type(exc).__name__
        await self._bus.publish(
            ChatFailed(
                request_id,
                kind,
                str(exc),
                exc.exit_code,
                content or "",
                route.provider if route else None,
                route.model if route else None,
            )
        )

    async def aclose(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.aclose()
