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
    tools     ToolLoop.follow        (tools on) each call through the approval gate, run,
                                     its result back as data, the model asked again
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
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cortan.core.errors import (
    CapabilityError,
    ContextOverflowError,
    CortanError,
    ObserverError,
)
from cortan.core.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ChatPrepared,
    Notice,
)
from cortan.core.messages import EMPTY_MAPPING, Message
from cortan.core.text import make_visible, one_line
from cortan.engine.answering import make_failure
from cortan.engine.checks import SchemaChecks
from cortan.engine.told import Told
from cortan.providers.base import ModelRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cortan.core.requests import ChatRequest
    from cortan.engine.answering import Progress
    from cortan.engine.bus import EventBus
    from cortan.engine.cache import AnswerCache
    from cortan.engine.context import ContextManager, Fit
    from cortan.engine.guard import Checked, Guard
    from cortan.engine.manager import ModelManager
    from cortan.engine.routes import Route
    from cortan.engine.tools.loop import Rounds, ToolLoop


class Chat:
    """Runs one request through the stages and returns how it ended."""

    def __init__(
        self,
        bus: EventBus,
        guard: Guard,
        context: ContextManager,
        manager: ModelManager,
        cache: AnswerCache | None = None,
        tools: ToolLoop | None = None,
        checks: SchemaChecks | None = None,
    ) -> None:
        self._bus = bus
        self.guard = guard
        self.context = context
        self.manager = manager
        self.cache = cache  # None: no response cache (the composition root may add one)
        self.tools = tools  # None: no tools (requests asking for them get a Notice)
        self.checks = checks or SchemaChecks()  # where schema checks run (engine/checks.py)
        self._told = Told()  # models that cannot think: said once each, or to each client

    async def run(self, request: ChatRequest) -> ChatEnded:
        """Answer ``request``; the ending is also published for observers."""
        progress: Progress | None = None
        rounds: Rounds | None = None  # a request with tools: its rounds so far
        sent: str | None = None  # the user's turn as it went out
        try:
            checked = self.guard.check(request)
            chain = self.manager.get_chain(request.model, fallback=request.allow_fallback)
            begun = asyncio.get_running_loop().time()
            due = self.context.first_token_due(begun)  # the lookups below wait inside it
            if checked.images or any(m.images for m in request.history):  # (a client's)
                await self._check_sight(request.model, chain[0], due)
                chain = [chain[0], *await self._sighted(chain[1:], due)]
            fit = await self.context.fit(checked, chain[0], due)
            if fit.dropped:
                if not request.trim:
                    raise _untrimmed(fit.dropped)
                await self._bus.publish(Notice(request.request_id, fit.dropped))
            await self._bus.publish(ChatPrepared(request, request.model, fit.messages))
            sent = fit.messages[-1].content
            sending = await self._check_thinking(
                request, chain[0], self._sending(request, chain[0], fit), due
            )
            if request.tools:
                from cortan.engine.tools.loop import Rounds

                rounds = Rounds()
                sending = await self._offer_tools(request, sending)
            ended = None if rounds is not None else await self._recall(request, chain[0], fit)
            if ended is None:
                progress = self._start(request, chain, fit, begun)
                ended = await self.manager.answer(progress, sending)
                if _overflowed(ended) and request.trim:  # the window is smaller than thought
                    assert isinstance(ended, ChatFailed)
                    fit = await self._refit(checked, chain[0], fit, ended)
                    sending = self._sending(request, chain[0], fit)._replace(
                        tools=sending.tools, think=sending.think
                    )
                    progress = self._start(request, chain, fit)
                    ended = await self.manager.answer(progress, sending)
                ended = await self._answer(request, fit, sending, progress, rounds, ended)
        except asyncio.CancelledError:
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
            ended = _cancelled(request, progress, rounds)
        except CortanError as exc:  # the guard, a bad name, a window it cannot fit, an observer
            ended = _failed(request, exc, progress, rounds)
        return await self._end(ended._replace(sent=sent) if sent is not None else ended)

    async def _refit(self, checked: Checked, route: Route, fit: Fit, failed: ChatFailed) -> Fit:
        """Fit the conversation again, harder, after the server refused it as too long,
        and say so; InputError when the newest message alone is too long for it."""
        again = await self.context.refit(checked, route, fit, failed)
        left_out = again.dropped_count - fit.dropped_count
        turns = "1 more earlier turn" if left_out == 1 else f"{left_out} more earlier turns"
        window = f"its {failed.window}-token window" if failed.window else "its window"
        await self._bus.publish(
            Notice(
                checked.request.request_id,
                f"{route} refused the conversation as longer than {window}: "
                f"asking again with {turns} left out",
            )
        )
        return again

    def _start(
        self, request: ChatRequest, chain: list[Route], fit: Fit, begun: float | None = None
    ) -> Progress:
        """A new answer over ``chain``; the options fitted to the first model's window
        that the user did not set are not sent to a fallback on another provider.
        ``begun``: when the request began, so that its first attempt waits for the first
        token only what the lookups before it left of ``timeouts.first_token``."""
        fitted = fit.options.keys() - dict(request.options).keys()
        spent = asyncio.get_running_loop().time() - begun if begun is not None else 0.0
        return self.manager.start(request.request_id, chain, fitted, spent)

    def _sending(self, request: ChatRequest, route: Route, fit: Fit) -> ModelRequest:
        """What goes to the first model: the fitted messages, options, thinking, schema."""
        think = request.think
        if think is None:
            think = self.manager.get_think(request.model, route)
        options = {**fit.options, **dict(request.options)}
        headers = _trace_headers(request)
        return ModelRequest(route.model, fit.messages, options, think, request.schema, headers)

    async def _answer(
        self,
        request: ChatRequest,
        fit: Fit,
        sending: ModelRequest,
        progress: Progress,
        rounds: Rounds | None,
        first: ChatFinished | ChatFailed,
    ) -> ChatEnded:
        """After the first stream: (tools on) the tool loop, the schema, learning, the cache."""
        ended: ChatEnded = first
        if rounds is not None and self.tools is not None:
            ended = await self.tools.follow(request, sending, progress, first, rounds)
            progress = progress if rounds.progress is None else rounds.progress
        if request.schema is not None and isinstance(ended, ChatFinished):
            ended = await self._fill_schema(request.schema, progress, sending, ended)
        if notice := self.context.learn(fit, ended if rounds is None else first):
            await self._bus.publish(Notice(request.request_id, notice))
        if self.cache is not None and rounds is None:
            await self.cache.keep(request, progress.chain[0], fit.messages, ended)
        return ended

    async def _offer_tools(self, request: ChatRequest, sending: ModelRequest) -> ModelRequest:
        """``sending`` with the tools' specs (none when this engine was given no tools)."""
        if self.tools is None:
            await self._bus.publish(Notice(request.request_id, "no tools here; answering without"))
            return sending
        return sending._replace(tools=await self.tools.specs(request))

    async def _recall(self, request: ChatRequest, route: Route, fit: Fit) -> ChatEnded | None:
        """The response cache's answer, when there is a cache and a usable answer in it."""
        if self.cache is None:
            return None
        found: ChatEnded | None = await self.cache.look_up(request, route, fit.messages)
        if found is not None and request.schema is not None:
            # None: not usable, ask the model; beside the loop, as every schema check
            found = await self.checks.check(_parsed, found, request.schema)
        return found

    async def _capabilities(self, name: str | None, due: float | None) -> tuple[str, ...] | None:
        """What the model's server (or the config) says it can do; None when unknown."""
        with contextlib.suppress(CortanError, TimeoutError):  # down: the request will say
            async with asyncio.timeout_at(self.context.looked_up_by(due)):
                return (await self.manager.show_model(name)).capabilities
        return None

    async def _check_thinking(
        self, request: ChatRequest, route: Route, sending: ModelRequest, due: float | None
    ) -> ModelRequest:
        """Thinking asked of a model its server says cannot think: asked without, and
        said. Ollama refuses such a request outright (400), which would fail every turn
        of a conversation after ``/think`` over one setting the model cannot use."""
        if sending.think in (None, False):
            return sending
        capabilities = await self._capabilities(request.model, due)
        if capabilities is None or "thinking" in capabilities:
            return sending
        # Once in a terminal (every turn after /think would say it): engine/told.py.
        if self._told.should_tell(("unthinking", route), request.client):
            listed = _listed(capabilities)
            text = f"model {route} does not think (its server lists: {listed}): asking without"
            await self._bus.publish(Notice(request.request_id, f"{text} thinking"))
        return sending._replace(think=None)

    async def _sighted(self, fallbacks: list[Route], due: float | None) -> list[Route]:
        """The fallbacks an image may go to: one whose server says it cannot see is left
        out (it was sent the image, and answered as if there were none); one unknown is
        kept, as the first model is."""
        kept = []
        for route in fallbacks:
            capabilities = await self._capabilities(str(route), due)
            if capabilities is None or "vision" in capabilities:
                kept.append(route)
        return kept

    async def _check_sight(self, name: str | None, route: Route, due: float | None) -> None:
        """Refuse images for a model its server (or the config) says cannot see them."""
        capabilities = await self._capabilities(name, due)
        if capabilities is not None and "vision" not in capabilities:
            raise CapabilityError(
                f"model {route} cannot see images (its server lists: {_listed(capabilities)}); "
                "attach them to a vision model such as gemma3 or qwen2.5vl"
            )

    async def _fill_schema(
        self,
        schema: Mapping[str, Any],
        progress: Progress,
        sent: ModelRequest,
        ended: ChatFinished,
    ) -> ChatEnded:
        """The answer parsed; else one repair turn to the model that answered; else exit 3."""
        from cortan.engine.schema import SchemaError, parse_answer, repair_prompt

        try:
            data, problem = await self.checks.check(parse_answer, ended.content, schema)
        except SchemaError as exc:  # the schema itself cannot be followed: no repair helps
            return make_failure(ended.request_id, exc, progress.route, ended.content)
        if problem is None:
            return ended._replace(data=data)
        await self._bus.publish(Notice(ended.request_id, f"{problem}; asking the model once more"))
        messages = (
            *sent.messages,
            Message("assistant", ended.content),
            Message("user", repair_prompt(problem)),
        )
        again = await self.manager.answer(
            self.manager.start(ended.request_id, [progress.route]),
            sent._replace(model=progress.route.model, messages=messages),
        )
        if not isinstance(again, ChatFinished):
            return again
        try:
            data, second = await self.checks.check(parse_answer, again.content, schema)
        except SchemaError as exc:
            return make_failure(ended.request_id, exc, progress.route, again.content)
        if second is None:
            return again._replace(data=data, thinking=ended.thinking + again.thinking)
        error = SchemaError(f"{second}, even after one repair")
        return make_failure(ended.request_id, error, progress.route, again.content)

    async def _end(self, ended: ChatEnded) -> ChatEnded:
        """Tell the observers how the request ended; an essential one failing fails it."""
        try:
            await self._bus.publish(ended)
        except ObserverError as exc:
            # Every observer has heard the ending (the bus delivers to the rest first);
            # the caller learns that part of the user's work could not be done.
            return _failed_after(ended, exc)
        return ended


def _trace_headers(request: ChatRequest) -> Mapping[str, str]:
    """What follows the request upstream: its W3C traceparent, when it has one."""
    if request.trace is None:
        return EMPTY_MAPPING
    return {"traceparent": request.trace.traceparent}


def _parsed(ended: ChatEnded, schema: Mapping[str, Any]) -> ChatEnded | None:
    """A cached answer for a schema request, parsed; None when it does not fit (ask anew)."""
    from cortan.engine.schema import SchemaError, parse_answer

    if not isinstance(ended, ChatFinished):
        return None
    try:
        data, problem = parse_answer(ended.content, schema)
    except SchemaError:
        return None  # asked anew, where the failure is told with the answer kept
    return ended._replace(data=data) if problem is None else None


def _cancelled(
    request: ChatRequest, progress: Progress | None, rounds: Rounds | None = None
) -> ChatCancelled:
    if rounds is not None and rounds.progress is not None:
        progress = rounds.progress  # the round under way
    if progress is None:
        return ChatCancelled(request.request_id)
    route = progress.route
    content, thinking = progress.content, progress.thought
    if rounds is not None:
        content, thinking = rounds.partial(content, thinking)
    return ChatCancelled(
        request.request_id, content, route.provider, route.model, thinking=thinking,
        first_token=progress.first_token,
    )  # fmt: skip


_MAX_CAPABILITIES = 12  # named in a notice; past them, counted
_MAX_CAPABILITY = 40  # characters of each (Ollama's longest today is "embedding")


def _listed(capabilities: tuple[str, ...]) -> str:
    """What a server says a model can do, as part of one short line: a hostile server's
    10,000 entries, a megabyte-long one or one holding a newline or an escape would
    otherwise make the notice a screenful, or several lines of the server's choosing."""
    shown = [
        one_line(make_visible(c[: _MAX_CAPABILITY + 1]), _MAX_CAPABILITY)
        for c in capabilities[:_MAX_CAPABILITIES]
    ]
    if len(capabilities) > _MAX_CAPABILITIES:
        shown.append(f"and {len(capabilities) - _MAX_CAPABILITIES} more")
    return ", ".join(shown) or "nothing"


def _untrimmed(dropped: str) -> ContextOverflowError:
    """The conversation does not fit and the request refuses to have turns left out."""
    return ContextOverflowError(
        f"the conversation does not fit the model's window ({dropped} if trimmed), "
        "and the request asked not to trim it"
    )


def _overflowed(ended: ChatEnded) -> bool:
    """The server refused the prompt as longer than its window, before any answer came."""
    return isinstance(ended, ChatFailed) and ended.kind == "context_overflow" and not ended.content


def _failed(
    request: ChatRequest, exc: CortanError, progress: Progress | None, rounds: Rounds | None = None
) -> ChatFailed:
    """The ending for ``exc``; an observer's failure keeps the text that had arrived."""
    if rounds is not None and rounds.progress is not None:
        combined = rounds.combine(_failed(request, exc, rounds.progress))
        assert isinstance(combined, ChatFailed)
        return combined
    if progress is None:
        return make_failure(request.request_id, exc, None, None)
    content = progress.content if isinstance(exc, ObserverError) else None
    failed = make_failure(request.request_id, exc, progress.route, content)
    return failed._replace(thinking=progress.thought) if content is not None else failed


def _failed_after(ended: ChatEnded, exc: ObserverError) -> ChatEnded:
    """``ended`` as a failure: the answer arrived, but showing or saving it did not work."""
    if not isinstance(ended, ChatFinished):
        return ended  # failed or cancelled already: its own sentence, its own exit code
    return ChatFailed(
        ended.request_id,
        exc.kind,
        str(exc),
        exc.exit_code,
        ended.content,
        ended.provider,
        ended.model,
    )
