"""``Chat.run``: the engine's one entry point, one request read top to bottom.

Layer: engine. Every front end (``cortan ask``, the REPL, and the gateway, batch
runner and command mode to come) builds a :class:`cortan.core.requests.ChatRequest`
and either dispatches it on the bus (the composition root registers
:meth:`Chat.run` as its one handler) or awaits ``Chat.run`` itself where no bus is
wanted. The stages are plain calls, in the order they happen::

    guard     Guard.check            size, encoding, binary data, secrets bound for a remote
    route     ModelManager.get_chain the model asked for (alias, default) and its fallbacks
    compose   ContextManager.fit     system prompt, earlier turns, attachments,
    + fit                            fitted to the first model's window
    prepared  -> observers           the recorder commits the user's turn here, before sending
    cache     AnswerCache.look_up    an answer kept for exactly this request, if asked for
    stream    ModelManager.answer    hosts, retries, breakers, fallback; pieces -> observers
    learn     ContextManager.learn   estimates corrected from the server's counts
    keep      AnswerCache.keep       a finished answer, for the next identical request
    ending    -> observers, returned finished | failed | cancelled, the partial kept

Outcomes are published on the bus for observers (views, the store recorder,
diagnostics); no observer starts the next stage. An essential observer's failure
(the view cannot write, the store cannot save) arrives here as
:class:`cortan.core.errors.ObserverError`: the stream is stopped and the request
ends failed with that sentence and whatever text had arrived, which the other
observers (the recorder above all) still receive.

``run`` returns the ending in every case, so a front end reads how its request
ended from the call alone. Ctrl-C included: a cancellation ends the request
cancelled with the partial text and is absorbed here, giving the task's cancel
count back (``Task.uncancel``) as asyncio asks of code that absorbs one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from cortan.core.errors import CortanError, ObserverError
from cortan.core.events import ChatCancelled, ChatEnded, ChatFailed, ChatPrepared, Notice
from cortan.engine.answering import make_failure
from cortan.providers.base import ModelRequest

if TYPE_CHECKING:
    from cortan.core.requests import ChatRequest
    from cortan.engine.answering import Progress
    from cortan.engine.bus import EventBus
    from cortan.engine.cache import AnswerCache
    from cortan.engine.context import ContextManager
    from cortan.engine.guard import Guard
    from cortan.engine.manager import ModelManager


class Chat:
    """Runs one request through the stages and returns how it ended."""

    def __init__(
        self,
        bus: EventBus,
        guard: Guard,
        context: ContextManager,
        manager: ModelManager,
        cache: AnswerCache | None = None,
    ) -> None:
        self._bus = bus
        self.guard = guard
        self.context = context
        self.manager = manager
        self.cache = cache  # None: no response cache (the composition root may add one)

    async def run(self, request: ChatRequest) -> ChatEnded:
        """Answer ``request``; the ending is also published for observers."""
        progress: Progress | None = None
        sent: str | None = None  # the user's turn as it went out
        try:
            checked = self.guard.check(request)
            chain = self.manager.get_chain(request.model, fallback=request.allow_fallback)
            fit = await self.context.fit(checked, chain[0])
            if fit.dropped:
                await self._bus.publish(Notice(request.request_id, fit.dropped))
            await self._bus.publish(ChatPrepared(request, request.model, fit.messages))
            sent = fit.messages[-1].content
            cache = self.cache
            ended: ChatEnded | None = None
            if cache is not None:
                ended = await cache.look_up(request, chain[0], fit.messages)
            if ended is None:
                progress = self.manager.start(request.request_id, chain)
                options = {**dict(request.options), **fit.options}
                ended = await self.manager.answer(
                    progress, ModelRequest(chain[0].model, fit.messages, options)
                )
                if notice := self.context.learn(fit, ended):
                    await self._bus.publish(Notice(request.request_id, notice))
                if cache is not None:
                    await cache.keep(request, chain[0], fit.messages, ended)
        except asyncio.CancelledError:
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
            ended = _cancelled(request, progress)
        except CortanError as exc:  # the guard, a bad name, a window it cannot fit, an observer
            ended = _failed(request, exc, progress)
        return await self._end(ended._replace(sent=sent) if sent is not None else ended)

    async def _end(self, ended: ChatEnded) -> ChatEnded:
        """Tell the observers how the request ended; an essential one failing fails it."""
        try:
            await self._bus.publish(ended)
        except ObserverError as exc:
            # Every observer has heard the ending (the bus delivers to the rest first);
            # the caller learns that part of the user's work could not be done.
            return _failed_after(ended, exc)
        return ended


def _cancelled(request: ChatRequest, progress: Progress | None) -> ChatCancelled:
    if progress is None:
        return ChatCancelled(request.request_id)
    route = progress.route
    return ChatCancelled(request.request_id, progress.content, route.provider, route.model)


def _failed(request: ChatRequest, exc: CortanError, progress: Progress | None) -> ChatFailed:
    """The ending for ``exc``; an observer's failure keeps the text that had arrived."""
    if progress is None:
        return make_failure(request.request_id, exc, None, None)
    content = progress.content if isinstance(exc, ObserverError) else None
    return make_failure(request.request_id, exc, progress.route, content)


def _failed_after(ended: ChatEnded, exc: ObserverError) -> ChatFailed:
    """``ended`` as a failure: the answer arrived, but showing or saving it did not work."""
    if isinstance(ended, ChatFailed):
        return ended  # already failed: its own sentence is the one to read
    return ChatFailed(
        ended.request_id,
        exc.kind,
        str(exc),
        exc.exit_code,
        ended.content,
        ended.provider,
        ended.model,
    )
