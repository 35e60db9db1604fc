"""One answer's way through its fallback chain: attempts, retries, hosts, events.

Layer: engine; the route-and-stream stage of ``Chat.run``. For each model in the
chain (the name asked for, then its fallbacks) the answerer picks a host
(:mod:`cortan.engine.hosts`) and tries again after a failure as the retry policy
allows (:mod:`cortan.engine.retry`). Only failures before the first piece of an
answer are retried or passed to the next model: once a piece was published the
answer belongs to that attempt, and a later failure ends the request with the
partial answer kept (an answer is never stitched from two).

Each attempt takes a slot on its host (:meth:`HostPool.claim` waits while every
healthy host is full) and keeps to the rate limits of its pool or host
(:mod:`cortan.engine.limits`) before it sends; a 429 pauses those limits for every
request of the process. Time spent waiting for a slot or a limit is not counted
against the retry deadline, nor in the answer's timings.

``ChatStarted`` names the model that answers: it is published at once when there is
no fallback to go to, otherwise when the first piece arrives (after a ``Notice``
saying which models failed). Each piece is republished as a ``TokenDelta``.
:meth:`Answerer.answer` returns how the answer ended (finished, or failed with the
text that arrived); ``Chat.run`` publishes that ending. What arrived so far lives in
the run's :class:`Progress`, which ``Chat.run`` holds, so an answer stopped by Ctrl-C
or by a failing view is still ended with its partial text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from cortan.core.errors import (
    BadResponseError,
    CortanError,
    ObserverError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnreachableError,
)
from cortan.core.events import (
    ChatFailed,
    ChatFinished,
    ChatStarted,
    Notice,
    ThinkingDelta,
    Timings,
    TokenDelta,
)
from cortan.core.text import format_size, without_surrogates
from cortan.engine.bus import EventBus
from cortan.engine.hosts import Host, HostPool
from cortan.engine.retry import RetryPolicy
from cortan.engine.routes import Route
from cortan.engine.thinking import ThinkSplitter
from cortan.engine.tokens import estimate_messages
from cortan.providers.base import (
    Adjusted,
    Finish,
    ModelRequest,
    Piece,
    Provider,
    Thinking,
    ToolCall,
)

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.engine.limits import RateLimiter

log = logging.getLogger(__name__)

#: Waits at least this long are announced in a Notice; shorter ones stay quiet.
NOTICE_WAIT = 1.0
CHUNK = 64  # pieces of an answer joined into one string
#: What a stream yields that is no piece of the answer; a tuple, as isinstance checks
#: it per piece 2-4x faster than the union type (50 vs 110-210 ns, measured).
ASIDE = (Finish, Adjusted)


@dataclass(slots=True)
class Progress:
    """One request on its way through the chain: what arrived, and what failed."""

    request_id: int
    chain: list[Route]
    started: float
    route: Route
    # The text so far: pieces, joined into chunks every CHUNK pieces so that the tens of
    # thousands of small strings of a long answer are freed as it streams instead of
    # living to its end among the renderer's long-lived caches, which kept the heap from
    # shrinking back (issue 7, memory).
    chunks: list[str] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    size: int = 0  # UTF-8 bytes of the text, held against max_output_bytes
    first_token: float | None = None
    announced: bool = False
    failures: list[tuple[Route, CortanError]] = field(default_factory=list)
    # Reasoning, apart from the answer: from the wire's own field, or split out of the
    # content (None once the content is known to be the answer: no cost per piece then).
    thinking: list[str] = field(default_factory=list)
    splitter: ThinkSplitter | None = field(default_factory=ThinkSplitter)
    answer_started: float | None = None  # when the first piece of the answer itself came
    waited: float = 0.0  # seconds spent waiting for a host's slot or a rate limit
    calls: list[ToolCall] = field(default_factory=list)  # tools the model asked for, in order
    # Options cortan set for the first model's window (Ollama's num_ctx), not the user's:
    # a fallback on another provider is sent without them (an OpenAI server would be
    # told of an option it has no field for, which nobody asked for).
    fitted: frozenset[str] = frozenset()
    # Seconds of ``timeouts.first_token`` the lookups before the first attempt used: that
    # attempt waits only the rest (a retry or a fallback waits the whole of it).
    spent: float = 0.0

    def add(self, piece: str) -> None:
        pieces = self.pieces
        pieces.append(piece)
        if len(pieces) >= CHUNK:
            self.chunks.append("".join(pieces))
            pieces.clear()

    @property
    def content(self) -> str:
        return "".join([*self.chunks, *self.pieces])

    @property
    def thought(self) -> str:
        return "".join(self.thinking)

    def restart(self) -> None:
        """A new attempt: nothing of it has arrived yet (a failed one sent nothing either)."""
        self.splitter = ThinkSplitter()
        self.thinking.clear()
        self.calls.clear()


class Answerer:
    """Walks one request at a time through its chain, publishing what happens.

    ``get_pool`` gives a provider's hosts (the model manager owns them, with their
    breakers); ``clock``, ``sleep`` and ``jitter`` are the seams for time and chance.
    """

    def __init__(
        self,
        bus: EventBus,
        settings: Settings,
        get_pool: Callable[[str], HostPool],
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        jitter: Callable[[], float],
    ) -> None:
        self._bus = bus
        self._settings = settings
        self._get_pool = get_pool
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._retry = RetryPolicy.from_settings(settings.retry)

    def start(
        self, request_id: int, chain: list[Route], fitted: Collection[str] = (), spent: float = 0.0
    ) -> Progress:
        """The progress of a new answer over ``chain``: held by the caller, filled here.
        ``spent``: seconds of the first token's wait the request used before (lookups)."""
        return Progress(
            request_id, chain, self._clock(), chain[0], fitted=frozenset(fitted), spent=spent
        )

    async def answer(self, answer: Progress, request: ModelRequest) -> ChatFinished | ChatFailed:
        """Answer ``request`` with the first model of the chain that can start.

        Raises only what is not the model's doing: cancellation, and an essential
        observer's failure (ObserverError); ``answer`` then holds what arrived.
        """
        if len(answer.chain) == 1:
            await self._announce(answer)
        for route in answer.chain:
            answer.route = route
            last = route is answer.chain[-1]
            try:
                sent = _for_route(answer, request, route)
                finish = await self._try_route(answer, sent, last)
            except ObserverError:
                raise
            except CortanError as exc:
                if answer.first_token is not None or last:
                    return await self._give_up(answer, exc)
                log.debug("%s cannot answer (%s); falling back", route, exc)
                answer.failures.append((route, exc))
                continue
            return self._finished(answer, finish)
        raise AssertionError("a chain has at least one model")  # pragma: no cover

    async def _try_route(self, answer: Progress, request: ModelRequest, last: bool) -> Finish:
        """One model: attempts on its hosts until one answers or the policy says stop."""
        pool = self._get_pool(answer.route.provider)
        tried: list[str] = []
        attempt = 0
        while True:
            attempt += 1
            begun = self._clock()
            host = await pool.claim(avoid=tried, force=last)
            answer.waited += self._clock() - begun
            if host is None:
                raise UnreachableError(pool.describe_open())
            tried.append(host.url)
            try:
                return await self._attempt(answer, pool, host, request)
            except ProviderError as exc:
                delay = self._get_delay(answer, pool, tried, exc, attempt)
                if isinstance(exc, RateLimitedError) and (limiter := pool.get_limiter(host)):
                    limiter.pause(self._retry.get_pause(exc, delay))  # the whole job slows down
                if delay is None and isinstance(exc, RateLimitedError) and exc.retry_after:
                    raise self._said_to_wait(exc) from exc
                if delay is None or (not last and not pool.has_available()):
                    raise  # every circuit open: on to the next model, without a wait
                await self._wait(answer, exc, attempt, delay)

    def _said_to_wait(self, exc: RateLimitedError) -> RateLimitedError:
        """A 429 given up on says how long the server asked to wait, and why it was not
        waited for: "rate limiting" alone left the user guessing when to try again."""
        wait = exc.retry_after or 0.0
        why = (
            f", past retry.deadline ({self._retry.deadline:g} s)"
            if (wait > self._retry.deadline)
            else ""
        )
        return RateLimitedError(f"{exc} (it asks to wait {wait:.0f} s{why})", wait)

    def _get_delay(
        self, answer: Progress, pool: HostPool, tried: list[str], exc: ProviderError, attempt: int
    ) -> float | None:
        if answer.first_token is not None:
            return None  # never stitch an answer from two attempts
        elapsed = self._clock() - answer.started - answer.waited
        delay = self._retry.get_delay(exc, attempt, elapsed, self._jitter)
        if delay is not None and pool.has_fresh(tried):
            return 0.0  # another host is waiting: fail over at once
        return delay

    async def _wait(self, answer: Progress, exc: ProviderError, attempt: int, delay: float) -> None:
        log.debug(
            "attempt %d of %s failed (%s); retrying in %.2f s", attempt, answer.route, exc, delay
        )
        if delay >= NOTICE_WAIT:
            text = f"{answer.route}: {exc}; trying again in {delay:.0f} s"
            await self._bus.publish(Notice(answer.request_id, text))
        if delay > 0:
            await self._sleep(delay)

    async def _attempt(
        self, answer: Progress, pool: HostPool, host: Host, request: ModelRequest
    ) -> Finish:
        """One try on one host, within its rate limits; the outcome counts for its breaker."""
        with host.attempt():
            limiter = pool.get_limiter(host)
            if limiter is None:
                return await self._consume(answer, pool.get_provider(host), request, host)
            self._check_pause(host, limiter)
            estimate = estimate_messages(request.messages) if limiter.counts_tokens else 0
            await self._pace(answer, limiter.reserve(estimate))
            finish = await self._consume(answer, pool.get_provider(host), request, host)
            limiter.settle(estimate, finish.usage.prompt_tokens, finish.usage.completion_tokens)
            return finish

    def _check_pause(self, host: Host, limiter: RateLimiter) -> None:
        """Fail at once, unsent, while a 429 pause lasts longer than ``retry.deadline``.

        A ``retry-after`` of a day failed its own request, then held every later one of
        the process (a batch's next item, each gateway request) for that day.
        """
        paused = limiter.paused_for
        if paused > self._retry.deadline:
            raise RateLimitedError(f"{host.url} is rate limiting requests", paused)

    async def _pace(self, answer: Progress, delay: float) -> None:
        """Wait ``delay`` seconds for a rate limit, saying so when it is long."""
        if delay <= 0:
            return
        if delay >= NOTICE_WAIT:
            text = f"{answer.route}: waiting {delay:.0f} s for the rate limit"
            await self._bus.publish(Notice(answer.request_id, text))
        begun = self._clock()
        await self._sleep(delay)
        answer.waited += self._clock() - begun

    async def _consume(
        self, answer: Progress, provider: Provider, request: ModelRequest, host: Host
    ) -> Finish:
        timeouts = self._settings.timeouts
        loop = asyncio.get_running_loop()
        begun = self._clock()
        send = self._bus.send
        answer.restart()
        first_token, answer.spent = timeouts.first_token - answer.spent, 0.0
        try:
            async with asyncio.timeout(first_token) as deadline:
                async with aclosing(_as_generator(provider.stream_chat(request))) as stream:
                    async for item in stream:
                        if isinstance(item, ASIDE):
                            if (finish := await self._aside(answer, item, provider)) is not None:
                                return finish
                            continue
                        if answer.first_token is None:
                            answer.first_token = self._clock() - answer.started - answer.waited
                            host.observe_latency(self._clock() - begun)
                            deadline.reschedule(loop.time() + timeouts.total)
                            await self._announce(answer)
                        if not isinstance(item, str):  # one check per piece of the answer
                            await self._beside(answer, item, provider)
                            continue
                        if answer.splitter is not None:
                            item = await self._split(answer, item, provider)
                            if not item:
                                continue
                        item = self._grow(answer, item, provider)
                        answer.add(item)
                        if (pending := send(TokenDelta(answer.request_id, item))) is not None:
                            await pending
        except TimeoutError:
            raise self._timeout_error(provider, answer.first_token is None) from None
        raise ProviderError(
            f"{provider.label} at {provider.url} ended the stream without finishing"
        )

    async def _beside(
        self, answer: Progress, item: Thinking | ToolCall, provider: Provider
    ) -> None:
        """Reasoning (published apart), or a tool call: the tool loop's once this answer ends."""
        if isinstance(item, Thinking):
            await self._think(answer, item.text, provider)
        else:
            self._count(answer, item.name + item.arguments, provider)
            answer.calls.append(item)

    async def _aside(
        self, answer: Progress, item: Finish | Adjusted, provider: Provider
    ) -> Finish | None:
        """What is no piece of the answer: its end (returned, what was held back shown),
        or a change the provider made to the request, which the user is told of."""
        if isinstance(item, Adjusted):
            await self._bus.publish(Notice(answer.request_id, f"{answer.route}: {item.text}"))
            return None
        await self._flush(answer, provider)
        await self._announce(answer)
        return item

    def _grow(self, answer: Progress, text: str, provider: Provider) -> str:
        """A piece of the answer, counted and clean (see :meth:`_count`)."""
        if answer.answer_started is None:
            answer.answer_started = self._clock()
        return self._count(answer, text, provider)

    def _count(self, answer: Progress, text: str, provider: Provider) -> str:
        """Count ``text`` against max_output_bytes (answer and reasoning alike); return it
        clean: a lone surrogate (a ``\\udc9b`` escape in the server's JSON) cannot be
        shown, stored or sent on, so it becomes U+FFFD here, where outside text enters."""
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            text = without_surrogates(text)
            size = len(text.encode("utf-8"))
        answer.size += size
        if answer.size > self._settings.max_output_bytes:
            raise _too_long(provider, self._settings.max_output_bytes)
        return text

    async def _think(self, answer: Progress, text: str, provider: Provider) -> None:
        """One piece of reasoning: kept apart and published for the views that show it."""
        text = self._count(answer, text, provider)
        answer.thinking.append(text)
        await self._bus.publish(ThinkingDelta(answer.request_id, text))

    async def _split(self, answer: Progress, piece: str, provider: Provider) -> str:
        """Take inline ``<think>`` reasoning out of ``piece``; return the answer in it."""
        assert answer.splitter is not None
        split = answer.splitter.feed(piece)
        if split.thinking:
            await self._think(answer, split.thinking, provider)
        if split.answer:
            answer.splitter = None  # from here on, content is the answer: no more splitting
        return split.answer

    async def _flush(self, answer: Progress, provider: Provider) -> None:
        """The stream ended: what the splitter held back is what it seemed to be."""
        if answer.splitter is None:
            return
        split = answer.splitter.flush()
        answer.splitter = None
        if split.thinking:
            await self._think(answer, split.thinking, provider)
        if split.answer:
            text = self._grow(answer, split.answer, provider)
            answer.add(text)
            await self._bus.publish(TokenDelta(answer.request_id, text))

    def _timeout_error(self, provider: Provider, before_first: bool) -> ProviderTimeoutError:
        timeouts = self._settings.timeouts
        which, key = ("first token", "first_token") if before_first else ("whole answer", "total")
        error = ProviderTimeoutError(
            f"{provider.label} at {provider.url} took longer than {getattr(timeouts, key):g} s "
            f"for the {which} (timeouts.{key})"
        )
        # The first-token wait is already the long one: go to the fallback, not again.
        error.retryable = False
        return error

    async def _announce(self, answer: Progress) -> None:
        """Say which model answers (once), after the models that could not."""
        if answer.announced:
            return
        answer.announced = True
        route = answer.route
        if answer.failures:
            failed = "; ".join(f"{r} failed ({exc})" for r, exc in answer.failures)
            await self._bus.publish(Notice(answer.request_id, f"{failed}; answered by {route}"))
        await self._bus.publish(ChatStarted(answer.request_id, route.provider, route.model))

    async def _give_up(self, answer: Progress, exc: CortanError) -> ChatFailed:
        """End the request failed: with the answering model's error once it started, else
        with the first model's, the fallbacks' failures told in a Notice before it."""
        if answer.first_token is not None or not answer.failures:
            failed = make_failure(answer.request_id, exc, answer.route, answer.content)
            return failed._replace(thinking=answer.thought)
        (first, first_exc), *others = [*answer.failures, (answer.route, exc)]
        told = "; ".join(f"{route} failed too ({error})" for route, error in others)
        await self._bus.publish(Notice(answer.request_id, f"fallback {told}"))
        return make_failure(answer.request_id, first_exc, first, "")

    def _finished(self, answer: Progress, finish: Finish) -> ChatFinished:
        now = self._clock()
        thought = None
        if answer.thinking and answer.first_token is not None:
            thought = (answer.answer_started or now) - (
                answer.started + answer.waited + answer.first_token
            )
        timings = Timings(answer.first_token, now - answer.started - answer.waited, thought)
        route = answer.route
        return ChatFinished(
            answer.request_id,
            route.provider,
            route.model,
            answer.content,
            finish.finish_reason,
            finish.usage,
            timings,
            thinking=answer.thought,
        )


def make_failure(
    request_id: int, exc: CortanError, route: Route | None, content: str | None
) -> ChatFailed:
    """The ending of a request that failed with ``exc``, keeping whatever content came."""
    kind = getattr(exc, "kind", None) or type(exc).__name__
    return ChatFailed(
        request_id,
        kind,
        str(exc),
        exc.exit_code,
        content or "",
        route.provider if route else None,
        route.model if route else None,
        window=getattr(exc, "window", None),
        prompt_tokens=getattr(exc, "prompt_tokens", None),
        retry_after=getattr(exc, "retry_after", None),
    )


def _too_long(provider: Provider, limit: int) -> BadResponseError:
    """An answer past max_output_bytes: memory must not grow without limit (docs/security.md)."""
    return BadResponseError(
        f"{provider.label} at {provider.url} sent more than {format_size(limit)} of answer; "
        "stopped there (setting max_output_bytes)"
    )


def _as_generator(
    stream: AsyncIterator[Piece],
) -> AsyncGenerator[Piece, None]:
    # The protocol promises an async iterator; every provider's is a generator, which
    # aclose() stops so the HTTP stream closes (providers/base.py's contract).
    return cast("AsyncGenerator[Piece, None]", stream)


def _for_route(answer: Progress, request: ModelRequest, route: Route) -> ModelRequest:
    """``request`` for ``route``: a fallback on another provider without the options
    cortan fitted to the first model's window."""
    if not answer.fitted or route.provider == answer.chain[0].provider:
        return request._replace(model=route.model)
    options = {k: v for k, v in request.options.items() if k not in answer.fitted}
    return request._replace(model=route.model, options=options)
