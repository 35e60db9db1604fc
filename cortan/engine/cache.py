"""The response cache stage of ``Chat.run``: which requests may be answered from it, and how.

Layer: engine. After the conversation is composed and fitted, and before anything is
routed or streamed, :meth:`AnswerCache.look_up` asks the store
(:class:`cortan.store.cache.CacheStore`) for an answer to exactly this request; a
finished answer from a model is kept by :meth:`AnswerCache.keep`. Every front end
that runs requests through ``Chat.run`` shares it (``cortan ask``, ``cortan batch``,
the gateway to come); the composition root turns it on (``App.use_cache``).

Which requests: those that ask (``ChatRequest.cache`` True: ``--cache``), or that
leave it to the settings (None) and go to a model ``cache.models`` names; never
those that say False (``--no-cache``). An answer sampled at a temperature above zero
is one of many possible ones, so it is neither looked up nor kept unless
``cache.sampled`` says so. A request that gives no temperature is cached: it asks
for the model's usual answer, which is what a second identical request wants back.

The key is a hash of everything that shapes the answer: the provider's kind and
name, the model's name as the server knows it and its digest where the server says
(Ollama lists one: a model pulled again is a new key), every message sent (system
prompt, earlier turns, the framed attachments), and the options the request gave.
The window size cortan asks Ollama for (``num_ctx``) is left out: it grows while a
process runs and changes nothing in an answer that fits. Schema and tools will join
the key when requests carry them.

A hit is told to observers as an answer is (started, its text as one piece) and
ends ``ChatFinished(cached=True)``; the front end says so (a dim line, the
``cached`` field of ``--json``). The cache is never the user's data: a store that
fails is said in a notice (once per process, to every gateway client: told.py),
and the request goes on to the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from cortan.core.errors import CortanError
from cortan.core.events import ChatEnded, ChatFinished, ChatStarted, Notice, Timings, TokenDelta
from cortan.core.messages import Message, Usage
from cortan.engine.told import Told
from cortan.store.cache import CachedAnswer, DamagedEntry

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.core.requests import ChatRequest
    from cortan.engine.bus import EventBus
    from cortan.engine.routes import Route, Router
    from cortan.store.cache import CacheStore

log = logging.getLogger(__name__)

#: Part of every key: a change to what keys mean starts the cache afresh.
KEY_VERSION = 2  # 2: images, thinking and the schema shape the key


def make_key(
    kind: str,
    provider: str,
    model: str,
    digest: str | None,
    messages: Sequence[Message],
    options: Sequence[tuple[str, object]],
) -> bytes:
    """The cache key of one request: a SHA-256 of everything that shapes its answer."""
    shape = [
        KEY_VERSION,
        kind,
        provider,
        model,
        digest,
        [[m.role, m.content, [image.digest for image in m.images]] for m in messages],
        sorted([str(k), v] for k, v in options),
    ]
    text = json.dumps(shape, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def get_temperature(options: Sequence[tuple[str, object]]) -> float | None:
    """The temperature a request asks for, if it gives one that reads as a number."""
    for key, value in options:
        if key == "temperature" and isinstance(value, int | float | str):
            try:
                return float(value)
            except ValueError:
                return None
    return None


class AnswerCache:
    """Looks requests up in ``store`` and keeps finished answers there.

    ``get_digest`` gives a route's model digest (the model manager's); ``clock``
    measures how long a hit took to hand out.
    """

    def __init__(
        self,
        bus: EventBus,
        settings: Settings,
        router: Router,
        store: CacheStore,
        *,
        get_digest: Callable[[Route], Awaitable[str | None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._settings = settings
        self._store = store
        self._get_digest = get_digest
        self._clock = clock
        self._configured = _resolve_all(router, settings.cache.models)
        self._told = Told()  # notices said once per process, or to each client (told.py)

    def wants(self, request: ChatRequest, route: Route) -> bool:
        """Whether ``request`` to ``route`` may be answered from the cache at all."""
        if request.cache is not None:
            return request.cache
        return str(route) in self._configured

    async def look_up(
        self, request: ChatRequest, route: Route, messages: Sequence[Message]
    ) -> ChatFinished | None:
        """The kept answer to this request, told to observers; None to ask the model."""
        if not self.wants(request, route):
            return None
        if self._is_sampled(request):
            if request.cache:  # asked for with --cache: say once why it is not
                temperature = get_temperature(request.options)
                text = (
                    f"not cached: sampled at temperature {temperature:g} "
                    "(cache.sampled = true caches these too)"
                )
                await self._say_once(request, "sampled", text)
            return None
        begun = self._clock()
        try:
            found = self._store.get(await self._key(route, messages, _shaping(request)))
        except DamagedEntry as exc:
            await self._say_once(request, "damaged", str(exc))
            return None
        except CortanError as exc:
            await self._say_once(request, "store", f"the response cache cannot be read: {exc}")
            return None
        if found is None:
            return None
        rid = request.request_id
        await self._bus.publish(ChatStarted(rid, found.provider, found.model))
        if found.content:
            await self._bus.publish(TokenDelta(rid, found.content))
        elapsed = self._clock() - begun
        usage = Usage(found.prompt_tokens, found.completion_tokens)
        return ChatFinished(
            rid, found.provider, found.model, found.content, found.finish_reason, usage,
            Timings(elapsed, elapsed), cached=True,
        )  # fmt: skip

    async def keep(
        self, request: ChatRequest, route: Route, messages: Sequence[Message], ended: ChatEnded
    ) -> None:
        """Keep a finished answer a model gave (under the key of the model that gave it)."""
        if not isinstance(ended, ChatFinished) or ended.cached:
            return
        if not self.wants(request, route) or self._is_sampled(request):
            return
        answered = route._replace(provider=ended.provider, model=ended.model)
        usage = ended.usage
        answer = CachedAnswer(
            ended.provider, ended.model, ended.content, ended.finish_reason,
            usage.prompt_tokens, usage.completion_tokens, time.time(),
        )  # fmt: skip
        try:
            self._store.put(await self._key(answered, messages, _shaping(request)), answer)
        except CortanError as exc:
            await self._say_once(request, "store", f"the response cache cannot be written: {exc}")

    def _is_sampled(self, request: ChatRequest) -> bool:
        temperature = get_temperature(request.options)
        return temperature is not None and temperature > 0 and not self._settings.cache.sampled

    async def _key(
        self, route: Route, messages: Sequence[Message], options: Sequence[tuple[str, object]]
    ) -> bytes:
        provider = self._settings.providers.get(route.provider)
        kind = provider.kind if provider is not None else "unknown"
        digest = await self._get_digest(route)
        return make_key(kind, route.provider, route.model, digest, messages, options)

    async def _say_once(self, request: ChatRequest, topic: str, text: str) -> None:
        log.debug("%s", text)
        if self._told.should_tell(topic, request.client):
            await self._bus.publish(Notice(request.request_id, text))


def _shaping(request: ChatRequest) -> list[tuple[str, object]]:
    """The request's options and what else shapes an answer: thinking, the schema."""
    shaping: list[tuple[str, object]] = list(request.options)
    if request.think is not None:
        shaping.append(("think", request.think))
    if request.schema is not None:
        shaping.append(("schema", json.dumps(request.schema, sort_keys=True)))
    return shaping


def _resolve_all(router: Router, names: Sequence[str]) -> frozenset[str]:
    """The routes ``cache.models`` names (a name that does not resolve names nothing)."""
    routes = set()
    for name in names:
        try:
            routes.add(str(router.resolve(name)))
        except CortanError:
            log.debug("cache.models: %r does not resolve", name)
    return frozenset(routes)
