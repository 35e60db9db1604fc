"""The OpenAI-compatible API: ``/v1/chat/completions`` (SSE and whole) and ``/v1/models``.

Layer: serve. Point any OpenAI client at ``http://127.0.0.1:11435/v1`` with the
gateway's token as its API key; ``model`` is any cortan name (``ollama:llama3.2``,
``openai:gpt-4o-mini``, an alias; empty means the default). A streamed answer is
``chat.completion.chunk`` events, a final chunk with ``finish_reason``, a usage
chunk when ``stream_options.include_usage`` asks, then ``data: [DONE]``; a failure
after the first piece is an ``error`` event, which the OpenAI SDK raises.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from cortan.core.errors import CortanError
from cortan.core.events import ChatFinished, ChatStarted
from cortan.serve import convert
from cortan.serve.notices import add_notices, get_headers
from cortan.serve.relay import Item
from cortan.serve.replies import (
    Receive,
    RequestError,
    Scope,
    Send,
    get_object,
    openai_error,
    read_json,
    refuse,
    send_bytes,
    send_error,
    send_json,
)

if TYPE_CHECKING:
    from cortan.core.requests import Trace
    from cortan.serve.gateway import Gateway

#: Body fields that change what an answer is and that the gateway cannot honour yet:
#: refused with a 400 naming them, unless empty or off.
UNSUPPORTED = (
    "tools", "functions", "tool_choice", "logprobs", "top_logprobs", "logit_bias", "audio",
    "modalities", "prediction", "web_search_options",
)  # fmt: skip
#: Body fields read here; the generation options are found by convert.get_options, and
#: any other field is dropped with a notice (docs/serve.md has the table).
HANDLED = frozenset(
    {"model", "messages", "stream", "stream_options", "n", "reasoning_effort",
     "response_format", *UNSUPPORTED}
)  # fmt: skip


class ChatEndpoint:
    """``POST /v1/chat/completions``."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway, limits = self.gateway, self.gateway.limits
        try:
            body = get_object(
                await read_json(
                    scope, receive, limit=limits.max_body_bytes, seconds=limits.body_timeout
                ),
                "a chat completion request",
            )
            request, stream, usage = await self._parse(scope, body)
        except RequestError as refused:
            gateway.metrics.rejected(refused.kind)
            await send_error(send, scope, refused)
            return
        trace: Trace = scope["state"]["trace"]
        form = OpenAIFormat(request.model or "", trace.request_id, include_usage=usage)
        await gateway.respond(scope, receive, send, request, "openai", form, stream=stream)

    async def _parse(self, scope: Scope, body: dict[str, Any]) -> tuple[Any, bool, bool]:
        convert.refuse_unsupported(body, UNSUPPORTED)
        if body.get("n") not in (None, 1):
            raise refuse("`n` must be 1: the gateway gives one answer", "unsupported")
        messages = convert.get_messages(body, self.gateway.limits)
        for key in ("max_tokens", "max_completion_tokens"):  # as OpenAI: Ollama's -1 is
            value = body.get(key)  # "no limit", and 0 an empty answer
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 1:
                raise refuse(f"`{key}` must be at least 1")
        options, dropped = convert.get_options(body, HANDLED)
        dropped += convert.get_dropped_in_messages(body)
        scope["state"]["notice"] = convert.tell_dropped(dropped)
        request = convert.make_request(
            self.gateway.services.next_id(),
            messages,
            model=convert.get_model(body),
            options=options,
            client=convert.get_client(scope, "openai"),
            trace=scope["state"]["trace"],
            allow_secrets=convert.allows_secrets(scope),
            trim=convert.allows_trim(scope),
            think=convert.get_think(body, "reasoning_effort"),
            schema=await convert.get_response_format(body, self.gateway.services.check_schema),
        )
        return request, convert.get_flag(body, "stream", False), convert.get_include_usage(body)


class OpenAIFormat:
    """``chat.completion`` and ``chat.completion.chunk`` for one answer."""

    content_type = b"text/event-stream; charset=utf-8"

    def __init__(self, model: str, request_id: str, *, include_usage: bool) -> None:
        self.id = "chatcmpl-" + request_id
        self.created = int(time.time())
        self.include_usage = include_usage
        self._opened = False
        self._set_model(model)

    def _set_model(self, model: str) -> None:
        self.model = model
        head = json.dumps(self._head("chat.completion.chunk"))[:-1]
        self._prefix = f'data: {head}, "choices": [{{"index": 0, "delta": {{"content": '
        self._suffix = '}, "finish_reason": null}]}\n\n'

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _chunk(
        self, delta: dict[str, Any], finish: str | None, notices: list[str] | None = None
    ) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {**self._head("chat.completion.chunk"), "choices": [choice]}
        return "data: " + json.dumps(add_notices(chunk, notices or []))

    def pieces(self, items: list[Item]) -> bytes:
        out: list[str] = []
        prefix, suffix = self._prefix, self._suffix
        for kind, value in items:
            if kind == "text":
                out.append(prefix + json.dumps(value) + suffix)
            elif kind == "thinking":  # as llama.cpp and vLLM send it
                out.append(self._chunk({"reasoning_content": value}, None) + "\n\n")
            elif kind == "started" and isinstance(value, ChatStarted):
                self._set_model(f"{value.provider}:{value.model}")
                prefix, suffix = self._prefix, self._suffix
        if out and not self._opened:
            self._opened = True
            out.insert(0, self._chunk({"role": "assistant", "content": ""}, None) + "\n\n")
        return "".join(out).encode()

    def closing(self, ended: ChatFinished, notices: list[str]) -> bytes:
        if not self._opened:
            self._opened = True
            opening = self._chunk({"role": "assistant", "content": ""}, None) + "\n\n"
        else:
            opening = ""
        events = [opening + self._chunk({}, ended.finish_reason, notices)]
        if self.include_usage:
            usage = {**self._head("chat.completion.chunk"), "choices": [], "usage": _usage(ended)}
            events.append("data: " + json.dumps(usage))
        return ("\n\n".join(events) + "\n\ndata: [DONE]\n\n").encode()

    def failure(self, status: int, kind: str, message: str) -> bytes:
        # the code a whole answer's error has (it was always "upstream", a 400 or a 503 too)
        return b"data: " + openai_error(status, kind, message) + b"\n\n"

    def whole(self, ended: ChatFinished, notices: list[str]) -> bytes:
        self._set_model(f"{ended.provider}:{ended.model}")
        message: dict[str, Any] = {"role": "assistant", "content": ended.content}
        if ended.thinking:
            message["reasoning_content"] = ended.thinking
        choice = {"index": 0, "message": message, "finish_reason": ended.finish_reason}
        body = {**self._head("chat.completion"), "choices": [choice], "usage": _usage(ended)}
        return json.dumps(add_notices(body, notices)).encode()


def _usage(ended: ChatFinished) -> dict[str, int]:
    prompt, completion = ended.usage.prompt_tokens or 0, ended.usage.completion_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class ModelsEndpoint:
    """``GET /v1/models``: every model of every provider as a cortan name, and the aliases;
    ``GET /v1/models/{model}``: one of them (the SDK's ``models.retrieve``), or 404."""

    def __init__(self, gateway: Gateway) -> None:
        self.models = gateway.models
        self.services = gateway.services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": owner}
            for name, owner in await self.models.get_names()
        ]
        wanted = scope.get("path_params", {}).get("model")
        if wanted is None:
            listing = json.dumps({"object": "list", "data": data}).encode()
            told = get_headers(self.models.get_notices())
            await send_bytes(send, 200, listing, raw_headers=told)
        elif found := [model for model in data if model["id"] in self._spellings(wanted)]:
            await send_json(send, 200, {**found[0], "id": wanted})
        else:
            message = f"model {wanted[:200]!r} is not among the gateway's models (GET /v1/models)"
            await send_error(send, scope, RequestError(404, "model_not_found", message))

    def _spellings(self, wanted: str) -> set[str]:
        """The listed names ``wanted`` may mean: itself, and what a chat naming it reaches
        (``ollama:llama3.2`` is listed as ``ollama:llama3.2:latest``; a bare name is the
        default provider's), so a client that checks its model first finds the one a
        chat would answer with."""
        try:
            route = self.services.resolve(wanted)
        except CortanError:
            return {wanted}
        return {wanted, str(route), f"{route}:latest"}


def endpoint(gateway: Gateway) -> ChatEndpoint:
    return ChatEndpoint(gateway)


def models_endpoint(gateway: Gateway) -> ModelsEndpoint:
    return ModelsEndpoint(gateway)
