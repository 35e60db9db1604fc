"""The gateway: its routes, and the life of one chat from admission to ending.

Layer: serve. :class:`Gateway` holds what every endpoint shares: the services,
the lanes (limits.py), the metrics and the chats in progress. Each chat runs in
a task of its own that awaits the engine's one entry point (``services.ask``);
its pieces arrive through a :class:`cortan.serve.relay.Relay` registered for its
request id. Beside it a watcher reads the client's side of the connection: when
the client goes away, the task is cancelled at once, which closes the upstream
stream; the engine ends the request cancelled and the recorder keeps the part
that arrived. A client that stops reading takes the same path: after
``serve.write_timeout`` without taking anything, the protocol tells the app it is
gone (protocol.py, stall.py) and :meth:`Gateway.stalled` counts and logs it.

A streamed response sends its status only with the first piece of the answer, a
thinking model's reasoning included (or the ending): a request that fails before
it starts gets a real HTTP status and one sentence, not a 200 with an error
inside. After that, a failure is the protocol's own mid-stream error.

Stopping (:meth:`Gateway.drain`): new chats are refused with 503, chats in
progress get ``serve.drain_timeout`` seconds to finish, the rest are cancelled
(their clients told, their partial answers recorded), and WebSockets are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from cortan.core.errors import BusyError, CortanError
from cortan.core.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ChatStarted,
)
from cortan.serve import convert
from cortan.serve.limits import Lanes
from cortan.serve.metrics import Metrics
from cortan.serve.models import ModelList
from cortan.serve.notices import Notices, get_headers
from cortan.serve.relay import Item, Relay
from cortan.serve.replies import (
    FAULT,
    Receive,
    RequestError,
    Scope,
    Send,
    as_document,
    error_body,
    get_retry_after,
    get_status,
    is_ollama,
    log_fault,
    send_bytes,
    send_error,
)
from cortan.serve.security import Door, HostCheck

if TYPE_CHECKING:
    from starlette.routing import Router

    from cortan.core.requests import ChatRequest
    from cortan.serve.limits import Lane
    from cortan.serve.services import GatewayServices

log = logging.getLogger("cortan.serve")
access = logging.getLogger("cortan.serve.access")

STOPPING = "cortan serve is stopping: the answer was cut short"
#: The pieces that open a stream with its 200. Reasoning is the answer begun: the engine
#: neither retries nor falls back once the first piece of either has arrived, and a
#: model that thinks for minutes otherwise showed its client nothing until it answered.
ANSWER_KINDS = frozenset({"text", "thinking"})


class Format(Protocol):
    """How one API spells a streamed answer and a whole one."""

    content_type: bytes

    def pieces(self, items: list[Item]) -> bytes:
        """The pieces that arrived, ready to write (b"" when none are the client's)."""
        ...

    def closing(self, ended: ChatFinished, notices: list[str]) -> bytes:
        """The end of a stream that finished, with the request's notices."""
        ...

    def failure(self, status: int, kind: str, message: str) -> bytes:
        """A mid-stream error in the protocol's own shape (``status`` as a whole answer's)."""
        ...

    def whole(self, ended: ChatFinished, notices: list[str]) -> bytes:
        """The body of a non-streamed answer, with the request's notices."""
        ...


class Gateway:
    """The ASGI application (``asgi``) and the chats it runs."""

    def __init__(
        self,
        services: GatewayServices,
        *,
        token: str | None,
        make_routes: Callable[[Gateway], Router],
        beyond_loopback: bool = False,
    ) -> None:
        self.services = services
        self.limits = services.settings.serve
        self.lanes = Lanes(services.settings)
        self.models = ModelList(services)  # /v1/models and /api/tags
        self.metrics = Metrics(self.lanes.states, services.host_states, self._open)
        self.chats: set[asyncio.Task[ChatEnded]] = set()
        self.sockets: set[Callable[[], Awaitable[None]]] = set()  # how to close each WebSocket
        self.door = Door(
            make_routes(self),
            token=token,
            hosts=HostCheck(self.limits.allowed_hosts, beyond_loopback=beyond_loopback),
            origins=self.limits.cors_origins,
            max_connections=self.limits.max_connections,
            metrics=self.metrics,
        )
        self.asgi = self.door

    def _open(self) -> int:
        return self.door.open

    @property
    def draining(self) -> bool:
        """Stopping: new requests are refused (at the door), those in progress drain."""
        return self.door.draining

    # -- admission -----------------------------------------------------------------------

    def admit(self, request: ChatRequest) -> tuple[Lane | None, asyncio.Future[None] | None]:
        """A slot (or a place in the queue) for ``request``, or the refusal to send."""
        if self.draining:
            raise RequestError(
                503, "stopping", "cortan serve is stopping and takes no new requests",
                {"retry-after": "5", "connection": "close"},
            )  # fmt: skip
        if len(self.chats) >= self.limits.max_streams:
            raise RequestError(
                503, "too_many_streams", f"the gateway is answering {len(self.chats)} requests, "
                "as many as it allows (setting serve.max_streams): try again shortly",
                {"retry-after": "1"},
            )  # fmt: skip
        try:
            provider = self.services.resolve(request.model).provider
        except CortanError:
            return None, None  # the engine says what is wrong with the name
        lane = self.lanes.get(provider)
        try:
            return lane, lane.enter()
        except BusyError as exc:
            retry = {"retry-after": str(exc.retry_after)}
            raise RequestError(429, exc.kind, str(exc), retry) from None

    def start(
        self, request: ChatRequest, api: str, relay: Relay | None = None,
        notices: Notices | None = None,
    ) -> asyncio.Task[ChatEnded]:  # fmt: skip
        """Admit ``request`` (or raise the refusal) and run it in a task of its own.

        Its pieces go to ``relay`` (streamed); without one, only its notices are kept,
        in ``notices``.
        """
        lane, place = self.admit(request)
        watcher = relay or notices or Notices()
        task = asyncio.create_task(self._run(request, api, relay, watcher, lane, place))
        self.chats.add(task)
        task.add_done_callback(self.chats.discard)
        return task

    async def _run(
        self,
        request: ChatRequest,
        api: str,
        relay: Relay | None,
        watcher: Relay | Notices,
        lane: Lane | None,
        place: asyncio.Future[None] | None,
    ) -> ChatEnded:
        began = time.monotonic()
        try:
            ended = await self._ask(request, watcher, place)
        except Exception as exc:  # a fault of cortan's own: still an ending, said once
            ended = _faulted(request, exc)
        finally:
            if lane is not None:
                lane.leave(place, time.monotonic() - began)
        if relay is not None:
            relay.end(ended)
        seconds = time.monotonic() - began
        self.metrics.ended(api, ended, seconds)
        notices = watcher.notices if isinstance(watcher, Relay) else watcher
        _log_ending(request, api, ended, seconds, notices.texts)
        return ended

    async def _ask(
        self, request: ChatRequest, watcher: Relay | Notices, place: asyncio.Future[None] | None
    ) -> ChatEnded:
        if place is not None:
            try:
                await place  # a turn in the provider's queue
            except asyncio.CancelledError:
                if (task := asyncio.current_task()) is not None:
                    task.uncancel()
                return ChatCancelled(request.request_id)
        unwatch = self.services.watch(request.request_id, watcher)
        try:
            return await self.services.ask(request)
        finally:
            unwatch()

    # -- responses -----------------------------------------------------------------------

    async def respond(
        self, scope: Scope, receive: Receive, send: Send, request: ChatRequest, api: str,
        form: Format, *, stream: bool,
    ) -> None:  # fmt: skip
        """Run ``request`` and answer it in ``form``, streamed or whole. The gateway's own
        notice (the fields it dropped: convert.tell_dropped, left in ``scope``'s state)
        is told as the engine's are."""
        try:
            # An answer that must fill a schema is checked (and mended once) first.
            relay = Relay() if stream and request.schema is None else None
            notices = relay.notices if relay is not None else Notices()
            if said := scope["state"].get("notice"):
                notices.add(said)
            task = self.start(request, api, relay, notices)
        except RequestError as refused:
            self.metrics.rejected(refused.kind)
            await send_error(send, scope, refused)
            return
        watcher = asyncio.create_task(_watch_disconnect(receive, task))
        try:
            if relay is not None:
                await self._send_stream(scope, send, relay, task, form)
            elif stream:
                await self._send_checked(scope, send, await task, form, notices.texts)
            else:
                await self._send_whole(scope, send, await task, form, notices.texts)
        finally:
            watcher.cancel()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send_whole(
        self, scope: Scope, send: Send, ended: ChatEnded, form: Format, notices: list[str]
    ) -> None:
        if isinstance(ended, ChatFinished):
            body = form.whole(as_document(ended), notices)
            await send_bytes(send, 200, body, raw_headers=get_headers(notices))
            return
        await self._send_failure(scope, send, ended, notices)

    async def _send_checked(
        self, scope: Scope, send: Send, ended: ChatEnded, form: Format, notices: list[str]
    ) -> None:
        """A streamed answer with a schema: the checked document in one piece, at its end.

        Streamed as it came, a first answer that did not fit would reach the client
        before the mended one, the two run together.
        """
        if not isinstance(ended, ChatFinished):
            await self._send_failure(scope, send, ended, notices)
            return
        items: list[Item] = [
            ("started", ChatStarted(ended.request_id, ended.provider, ended.model))
        ]
        if ended.thinking:
            items.append(("thinking", ended.thinking))
        items.append(("text", as_document(ended).content))
        await _start_stream(send, form.content_type, notices)
        body = form.pieces(items) + form.closing(ended, notices)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _send_failure(
        self, scope: Scope, send: Send, ended: ChatEnded, notices: list[str]
    ) -> None:
        status, kind, message = self.describe(ended)
        body = error_body(scope, status, kind, message)
        await send_bytes(send, status, body, headers=get_retry_after(ended),
                         raw_headers=get_headers(notices))  # fmt: skip

    def describe(self, ended: ChatEnded) -> tuple[int, str, str]:
        """Status, kind and sentence of a request that did not finish."""
        if isinstance(ended, ChatFailed):
            return get_status(ended), ended.kind, ended.message
        if self.draining:
            return 503, "stopping", STOPPING
        return 499, "cancelled", "the request was cancelled"

    async def _send_stream(
        self, scope: Scope, send: Send, relay: Relay, task: asyncio.Task[ChatEnded], form: Format
    ) -> None:
        held: list[Item] = []
        started = False
        while items := await relay.take():
            if not started:
                held += items
                if not any(kind in ANSWER_KINDS for kind, _ in items):
                    continue  # the status waits for the first piece of the answer
                items, held, started = held, [], True
                await _start_stream(send, form.content_type, relay.notices.texts)
            if data := form.pieces(items):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        ended = await task
        notices = relay.notices.texts
        if not started and not isinstance(ended, ChatFinished):
            await self._send_failure(scope, send, ended, notices)
            return
        if not started:
            await _start_stream(send, form.content_type, notices)
            if data := form.pieces(held):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        tail = (
            form.closing(ended, notices) if isinstance(ended, ChatFinished)
            else form.failure(*self.describe(ended))
        )  # fmt: skip
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    # -- clients that stop reading -------------------------------------------------------

    def stalled(self, scope: Mapping[str, Any]) -> None:
        """One connection given up on for reading nothing (protocol.py): counted, one line.

        Its chats end on the disconnect path, each with its own line and outcome
        (cancelled, the partial stored as interrupted); this line says why.
        """
        self.metrics.cut_off("write_timeout")
        if not access.isEnabledFor(logging.INFO):
            return
        if scope["type"] == "websocket":
            api = "websocket"
        else:
            api = "ollama" if is_ollama(scope) else "openai"
        trace = scope.get("state", {}).get("trace")
        access.info(
            "%s", f"{api} write_timeout request_id={trace.request_id if trace else '-'} "
            f"client={convert.get_client(scope, api)!r}: read nothing for "
            f"{self.limits.write_timeout:g} s (serve.write_timeout); its connection is closed",
        )  # fmt: skip

    # -- stopping ------------------------------------------------------------------------

    async def drain(self, seconds: float) -> None:
        """Refuse new chats, give those in progress ``seconds``, cancel the rest, close sockets."""
        self.door.draining = True
        if self.chats:
            await asyncio.wait(set(self.chats), timeout=seconds)
        for task in list(self.chats):
            task.cancel()
        if self.chats:
            await asyncio.wait(set(self.chats), timeout=5.0)
        for close in list(self.sockets):
            with contextlib.suppress(Exception):
                await close()
        await self.models.aclose()


async def _start_stream(send: Send, content_type: bytes, notices: list[str]) -> None:
    """The stream's status and headers: the notices so far (the final chunk has them all)."""
    headers = [(b"content-type", content_type), (b"cache-control", b"no-cache")]
    headers += get_headers(notices)
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _watch_disconnect(receive: Receive, task: asyncio.Task[ChatEnded]) -> None:
    """Cancel ``task`` the moment the client goes away: the upstream stream closes with it."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            task.cancel()
            return


def _faulted(request: ChatRequest, exc: Exception) -> ChatFailed:
    """The ending of a request the engine raised on instead of ending: a 500 with one
    sentence for its client, a line of the access log naming the fault.

    Without it the request's task died with the exception: a whole answer was
    Starlette's bare 500, and a streamed one, whose writer waits for the ending,
    never answered at all (a lone surrogate in a model name did both).
    """
    log_fault(request.trace.request_id if request.trace is not None else "-", exc)
    return ChatFailed(request.request_id, "internal", FAULT)


def _log_ending(
    request: ChatRequest, api: str, ended: ChatEnded, seconds: float, notices: list[str]
) -> None:
    if not access.isEnabledFor(logging.INFO):
        return
    trace = request.trace.request_id if request.trace is not None else "-"
    outcome = type(ended).__name__.removeprefix("Chat").lower()
    model = f"{ended.provider}:{ended.model}" if ended.provider else (request.model or "default")
    line = (
        f"{api} {outcome} model={model} request_id={trace} client={request.client!r} {seconds:.3f}s"
    )
    if isinstance(ended, ChatFinished):
        usage = ended.usage
        line += f" tokens={usage.prompt_tokens}/{usage.completion_tokens}"
    elif isinstance(ended, ChatFailed):
        line += f" error={ended.kind}: {ended.message}"
    if notices:
        line += f" notices={notices!r}"
    access.info("%s", line)
