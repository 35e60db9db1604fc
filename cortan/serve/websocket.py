"""``/ws``: chats carried as events over one WebSocket, cancellable by the client.

Layer: serve. One JSON object per message, each with a ``type``. The client
sends::

    {"type": "chat", "id": "c1", "model": "ollama:llama3.2",
     "messages": [{"role": "user", "content": "hi"}]}        (or "prompt": "hi",
                                                             "system": "...", "options": {...},
                                                             "think": false | "low" | ...,
                                                             "format": "json" | a schema,
                                                             "allow_secrets": false)
    {"type": "cancel", "id": "c1"}

and receives, for each chat in order (``id`` is the client's own)::

    {"type": "started", "id", "request_id", "provider", "model"}
    {"type": "delta", "id", "kind": "text" | "thinking", "text": "..."}  (thinking: a
                                                 model's reasoning, never the answer)
    {"type": "notice", "id", "text": "..."}
    {"type": "end", "id", "status": "finished" | "failed" | "cancelled", "content",
     "finish_reason", "usage", "timings", "error": {"kind", "message"}}

A message the gateway cannot take gets ``{"type": "error", "id", "kind",
"message"}`` (and ``retry_after`` when the provider's queue is full). Up to
``serve.chats_per_socket`` chats run at once on one socket; a socket that goes
away cancels its chats, as a cancel would, and so does one that reads nothing for
``serve.write_timeout`` (closed with 1008: protocol.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from cortan.core.events import ChatEnded, ChatFailed, ChatFinished, ChatStarted, Notice
from cortan.core.messages import Message
from cortan.serve import convert
from cortan.serve.relay import Relay
from cortan.serve.replies import (
    FAULT,
    Receive,
    RequestError,
    Scope,
    Send,
    as_document,
    get_retry_after,
    log_fault,
    parse_json,
    refuse,
)
from cortan.serve.security import make_trace

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from cortan.core.requests import ChatRequest
    from cortan.serve.gateway import Gateway

SUBPROTOCOL = "cortan"
MAX_ID_CHARS = 100
#: A chat's fields read here; ``tools`` is refused (400's sentence, as an ``error``
#: event), and any other field is dropped with a notice, as on the HTTP APIs.
UNSUPPORTED = ("tools",)
HANDLED = frozenset(
    {"type", "id", "model", "messages", "prompt", "system", "options", "think", "format",
     "allow_secrets", *UNSUPPORTED}
)  # fmt: skip


class Endpoint:
    """``/ws``: one instance serves every socket."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.websockets import WebSocket, WebSocketDisconnect

        socket = WebSocket(scope, receive, send)
        offered = [p.strip() for p in scope.get("subprotocols", [])]
        await socket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        session = Session(self.gateway, socket, scope)
        close = session.close_for_shutdown
        self.gateway.sockets.add(close)
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    await session.refuse_binary()
                else:
                    await session.handle_safely(text)
        except (WebSocketDisconnect, RuntimeError):
            pass  # gone
        finally:
            self.gateway.sockets.discard(close)
            await session.cancel_all()


class Session:
    """One socket's chats in progress."""

    def __init__(self, gateway: Gateway, socket: WebSocket, scope: Scope) -> None:
        self.gateway = gateway
        self.socket = socket
        self.scope = scope
        self.trace = scope["state"]["trace"]
        self.client = convert.get_client(scope, "websocket")
        self.chats: dict[str, asyncio.Task[None]] = {}
        self.count = 0

    async def send(self, event: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the socket went away: the chat is cancelled
            await self.socket.send_text(json.dumps(event))

    async def handle_safely(self, text: str) -> None:
        """:meth:`handle`, where a fault of cortan's own is an ``error`` event and the
        socket goes on: it ended the socket, and every chat on it (a schema whose
        ``$schema`` was a number did it)."""
        try:
            await self.handle(text)
        except Exception as exc:
            log_fault(self.trace.request_id, exc)
            self.gateway.metrics.rejected("internal")
            await self._error(_get_id(_peek_id(text)), "internal", FAULT)

    async def handle(self, text: str) -> None:
        try:
            message = parse_json(text, "the message")
        except RequestError as refused:  # named by its id when that can be read at all
            await self._error(_get_id(_peek_id(text)), refused.kind, str(refused))
            return
        if not isinstance(message, dict):
            await self._error(None, "bad_message", "a message must be a JSON object with a type")
            return
        kind, chat_id = message.get("type"), _get_id(message.get("id"))
        if kind == "chat":
            await self._start(chat_id, message)
        elif kind == "cancel":
            task = self.chats.get(chat_id or "")
            if task is not None:
                task.cancel()
            else:  # a typo in the id would otherwise leave the client waiting on a chat
                await self._error(
                    chat_id, "bad_message", "no chat with this id is running: nothing to cancel"
                )
        else:
            await self._error(chat_id, "bad_message", "`type` must be chat or cancel")

    async def refuse_binary(self) -> None:
        await self._error(None, "bad_message", "messages are JSON in text frames, not binary ones")

    async def _start(self, chat_id: str | None, message: dict[str, Any]) -> None:
        if chat_id is None:
            await self._error(None, "bad_message", "a chat needs an `id` (a string of its own)")
            return
        if chat_id in self.chats:
            await self._error(chat_id, "bad_message", f"chat {chat_id!r} is still running")
            return
        if len(self.chats) >= self.gateway.limits.chats_per_socket:
            limit = self.gateway.limits.chats_per_socket
            await self._error(
                chat_id,
                "too_many_chats",
                f"this socket already runs {limit} "
                "chats, as many as it may (setting serve.chats_per_socket)",
            )
            return
        try:
            request, notice = await self._make_request(chat_id, message)
            relay = Relay()
            if notice is not None:  # the first event of the chat
                relay.on_notice(Notice(request.request_id, notice))
            task = self.gateway.start(request, "websocket", relay)
        except RequestError as refused:
            self.gateway.metrics.rejected(refused.kind)
            retry = refused.headers.get("retry-after")
            await self._error(chat_id, refused.kind, str(refused), retry_after=retry)
            return
        pump = self._pump(chat_id, request, relay, task)
        self.chats[chat_id] = asyncio.create_task(pump)
        # Let the pump begin before the next message is read: a cancel that came in the
        # same read would cancel a task that never ran, so none of its body would (no
        # `end`, the id never freed, the upstream request left running), and eight such
        # chats filled the socket for good.
        await asyncio.sleep(0)

    async def _make_request(self, chat_id: str, message: dict[str, Any]) -> tuple[Any, str | None]:
        """The chat's request, and the notice of the fields it could not carry."""
        convert.refuse_unsupported(message, UNSUPPORTED)
        self.count += 1
        if "messages" in message:
            messages = convert.get_messages(message, self.gateway.limits)
        else:
            prompt, system = message.get("prompt"), message.get("system")
            if not isinstance(prompt, str) or not (system is None or isinstance(system, str)):
                raise refuse("a chat needs `messages`, or a `prompt` string")
            messages = [Message("system", system)] if system else []
            messages.append(Message("user", prompt))
        given = message.get("options") or {}
        if not isinstance(given, dict):
            raise refuse("`options` must be an object")
        options, dropped = convert.get_options(given)
        ignored = [key for key in message if key not in HANDLED]
        ignored += convert.get_dropped_in_messages(message)
        notice = convert.tell_dropped([*(f"options.{k}" for k in dropped), *ignored])
        request = convert.make_request(
            self.gateway.services.next_id(),
            messages,
            model=convert.get_model(message),
            options=options,
            client=self.client,
            trace=make_trace(f"{self.trace.request_id}.{self.count}", self.trace.traceparent),
            allow_secrets=convert.get_flag(message, "allow_secrets", False),
            think=convert.get_think(message, "think"),
            schema=await convert.get_format(message, self.gateway.services.check_schema),
        )
        return request, notice

    async def _pump(
        self, chat_id: str, request: ChatRequest, relay: Relay, task: asyncio.Task[ChatEnded]
    ) -> None:
        """Send one chat's events as they come; a cancel reaches the engine's task. An
        answer that must fill a schema comes as one delta once checked (and mended): as
        the model wrote it, a first answer that did not fit would run into the mended one."""
        request_id, held = request.trace.request_id if request.trace else "", request.schema
        try:
            while items := await relay.take():
                for kind, value in items:
                    if kind != "text" or held is None:
                        await self.send(_event(chat_id, request_id, kind, value))
            ended = await task
            if held is not None and isinstance(ended, ChatFinished):
                ended = as_document(ended)
                await self.send(_event(chat_id, request_id, "text", ended.content))
        except asyncio.CancelledError:
            task.cancel()
            ended = await task
        finally:
            self.chats.pop(chat_id, None)
        await self.send(self._ending(chat_id, ended))

    def _ending(self, chat_id: str, ended: ChatEnded) -> dict[str, Any]:
        status = {ChatFinished: "finished", ChatFailed: "failed"}.get(type(ended), "cancelled")
        event: dict[str, Any] = {"type": "end", "id": chat_id, "status": status,
                                 "content": ended.content, "thinking": ended.thinking}  # fmt: skip
        if isinstance(ended, ChatFinished):
            event["finish_reason"] = ended.finish_reason
            event["usage"] = ended.usage._asdict()
            event["timings"] = {"first_token_s": ended.timings.first_token,
                                "total_s": ended.timings.total}  # fmt: skip
        elif isinstance(ended, ChatFailed):
            event["error"] = {"kind": ended.kind, "message": ended.message}
            if retry := get_retry_after(ended):
                event["error"]["retry_after"] = int(retry["retry-after"])
        elif self.gateway.draining:
            event["error"] = {"kind": "stopping", "message": "cortan serve is stopping"}
        return event

    async def _error(
        self, chat_id: str | None, kind: str, message: str, retry_after: str | None = None
    ) -> None:
        event: dict[str, Any] = {"type": "error", "id": chat_id, "kind": kind, "message": message}
        if retry_after is not None:
            event["retry_after"] = int(retry_after)
        await self.send(event)

    async def cancel_all(self) -> None:
        chats = list(self.chats.values())
        for task in chats:
            task.cancel()
        if chats:
            await asyncio.wait(chats)

    async def close_for_shutdown(self) -> None:
        await self.cancel_all()
        with contextlib.suppress(Exception):
            await self.socket.close(code=1001, reason="cortan serve is stopping")


def _event(chat_id: str, request_id: str, kind: str, value: object) -> dict[str, Any]:
    if kind in ("text", "thinking"):
        return {"type": "delta", "id": chat_id, "kind": kind, "text": value}
    if kind == "started" and isinstance(value, ChatStarted):
        return {"type": "started", "id": chat_id, "request_id": request_id,
                "provider": value.provider, "model": value.model}  # fmt: skip
    return {"type": kind, "id": chat_id, "text": value}


def _get_id(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**MAX_ID_CHARS:
        value = str(value)  # (a bound first: str() of a huge int is slow, or refused)
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS:
        return value
    return None


def _peek_id(text: str) -> object:
    """The ``id`` of a message, for an error about it; None when it has none."""
    with contextlib.suppress(ValueError, RecursionError):
        message = json.loads(text)
        if isinstance(message, dict):
            return message.get("id")
    return None


def endpoint(gateway: Gateway) -> Endpoint:
    return Endpoint(gateway)
