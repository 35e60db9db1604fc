"""Fake OpenAI-compatible server: /v1/models and /v1/chat/completions (SSE).

Mirrors api.openai.com closely enough for the `openai` SDK and cortan's
OpenAI provider: Bearer-key checks, the error envelope and codes the SDK maps
to exception classes, `chat.completion.chunk` events with an optional usage
chunk, `data: [DONE]`, and a framework-style 404 outside `/v1` (the classic
"forgot /v1 in the base URL" mistake).
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from http import HTTPStatus
from typing import Any

from tests.servers.http import Exchange, FakeServer, Reply

__all__ = ["FakeOpenAI"]

_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
    "or as the password field (with blank username) if you're accessing the API "
    "from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> object:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _bad_key(key: str) -> object:
    shown = f"{key[:3]}...{key[-4:]}" if len(key) > 7 else key
    return _error(
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


class _OpenAIWire:
    """`chat.completion` / `chat.completion.chunk` shapes for one request."""

    content_type = "text/event-stream; charset=utf-8"

    def __init__(self, model: str, include_usage: bool, key: str) -> None:
        self.model, self.include_usage, self.key = model, include_usage, key
        self.id = "chatcmpl-" + secrets.token_urlsafe(22)
        self.created = int(time.time())

    def error_body(self, status: int, message: str | None) -> object:
        if status == 401:
            return (
                _bad_key(self.key)
                if message is None
                else _error(message, "invalid_request_error", "invalid_api_key")
            )
        if status == 404:
            default = f"The model `{self.model}` does not exist or you do not have access to it."
            return _error(message or default, "invalid_request_error", "model_not_found")
        if status == 429:
            default = (
                f"Rate limit reached for {self.model} in organization org-fake on "
                "requests per min (RPM): Limit 3, Used 3, Requested 1. Please try "
                "again in 20s. Visit https://platform.openai.com/account/rate-limits "
                "to learn more."
            )
            return _error(message or default, "requests", "rate_limit_exceeded")
        if status >= 500:
            return _error(message or _SERVER_ERROR, "server_error", None)
        phrase = HTTPStatus(status).phrase
        return _error(message or phrase, "invalid_request_error", None)

    def _usage(self, reply: Reply) -> dict[str, Any]:
        total = reply.prompt_tokens + reply.eval_count
        usage: dict[str, Any] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.eval_count,
            "total_tokens": total,
        }
        if reply.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
        return usage

    def _head(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**self._head("chat.completion.chunk"), "choices": [choice]}
        if self.include_usage:  # real OpenAI adds usage: null to every chunk
            chunk["usage"] = None
        return _event(chunk)

    def complete(self, reply: Reply) -> object:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
        if reply.thinking:
            message[reply.reasoning_field] = "".join(reply.thinking)
        choice = {"index": 0, "message": message, "logprobs": None}
        choice["finish_reason"] = reply.finish_reason
        return {
            **self._head("chat.completion"),
            "choices": [choice],
            "usage": self._usage(reply),
        }

    def opening(self) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": "", "refusal": None}, None)]

    def piece(self, text: str) -> bytes:
        return self._chunk({"content": text}, None)

    def thought(self, text: str, reply: Reply) -> bytes | None:
        return self._chunk({reply.reasoning_field: text}, None)

    def malformed(self) -> bytes:
        return b"data: {not json\n\n"

    def stream_error(self, message: str | None) -> bytes:
        return _event(_error(message or _SERVER_ERROR, "server_error", None))

    def tool_calls(self, reply: Reply) -> list[bytes]:
        """Streamed `tool_calls` deltas: id and name first, then the arguments in pieces."""
        streams: list[list[dict[str, Any]]] = []
        for index, call in enumerate(reply.tool_calls):
            text = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
            size = max(1, -(-len(text) // max(reply.argument_pieces, 1)))
            first = {
                "index": index,
                "id": call.id or f"call_{secrets.token_hex(8)}",
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            pieces = [
                {"index": index, "function": {"arguments": text[i : i + size]}}
                for i in range(0, len(text), size)
            ]
            streams.append([first, *pieces])
        if reply.interleave_calls:
            order = [d for group in itertools.zip_longest(*streams) for d in group if d]
        else:
            order = [d for stream in streams for d in stream]
        return [self._chunk({"tool_calls": [delta]}, None) for delta in order]

    def closing(self, reply: Reply) -> list[bytes]:
        events = [self._chunk({}, reply.finish_reason)]
        if self.include_usage:
            usage = {**self._head("chat.completion.chunk"), "choices": []}
            events.append(_event({**usage, "usage": self._usage(reply)}))
        return [*events, b"data: [DONE]\n\n"]


class FakeOpenAI(FakeServer):
    """Fake OpenAI API; point clients at `url + "/v1"`."""

    default_models = ("gpt-4o-mini", "gpt-4o")
    chat_path = "/v1/chat/completions"

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(port=port, host=host)
        self.api_key: str | None = None
        # As llama.cpp's server started with `-c N`: a prompt of more tokens than this
        # is refused with its `exceed_context_size_error`. None: no limit.
        self.context_size: int | None = None
        # How the refusal comes: "status" (HTTP 400, current llama.cpp), "sse" (HTTP 200
        # and an `error: {...}` line, older builds), or "text" (400 with the older
        # sentence and no counts: "input is too large to process").
        self.overflow_style = "status"
        # As some servers and proxies do: answer a streamed request with one JSON object.
        self.ignore_stream = False
        self._refused = 0
        # Body fields refused as OpenAI's reasoning models or a strict server refuse them,
        # each with how: "unsupported_parameter" (max_tokens on o-series and gpt-5),
        # "unsupported_value" (temperature there), or "extra_forbidden" (a server built
        # on pydantic: no `param`, the field named only in the message).
        self.refuse_fields: dict[str, str] = {}

    @property
    def refused(self) -> int:
        """Chat requests refused as too long for ``context_size``."""
        return self._refused

    def count_prompt(self, body: dict[str, Any]) -> int:
        """This fake's tokenizer: a token per 2 characters, 4 per message, so about twice
        cortan's estimate for English, as a real model's tokenizer can be (issue 21)."""
        total = 0
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            text = content if isinstance(content, str) else json.dumps(content)
            total += 4 + (len(text) + 1) // 2
        return total

    async def _refuse_overflow(self, ex: Exchange, prompt: int, n_ctx: int) -> None:
        error = {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": prompt,
            "n_ctx": n_ctx,
        }
        if self.overflow_style == "sse":
            await ex.start_stream("text/event-stream")
            await ex.send_chunk(b"error: " + json.dumps(error).encode() + b"\n\n")
            await ex.end_stream()
            return
        if self.overflow_style == "text":
            error = {
                "code": 500,
                "message": "input is too large to process. increase the physical batch size",
                "type": "server_error",
            }
            await ex.send_json(500, {"error": error})
            return
        await ex.send_json(400, {"error": error})

    async def _refuse_field(self, ex: Exchange, field: str, value: object) -> None:
        style = self.refuse_fields[field]
        if style == "extra_forbidden":
            detail = [{"type": "extra_forbidden", "loc": ("body", field),
                       "msg": "Extra inputs are not permitted", "input": value}]  # fmt: skip
            body = {"object": "error", "message": str(detail), "type": "BadRequestError",
                    "param": None, "code": 400}  # fmt: skip
            await ex.send_json(400, body)
            return
        if style == "unsupported_value":
            message = (
                f"Unsupported value: '{field}' does not support {value} with this model. "
                "Only the default (1) value is supported."
            )
        else:
            message = f"Unsupported parameter: '{field}' is not supported with this model."
            if field == "max_tokens":
                message += " Use 'max_completion_tokens' instead."
        await ex.send_json(400, _error(message, "invalid_request_error", style, field))

    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}

    async def handle(self, ex: Exchange) -> None:
        method, path, body = ex.request.method, ex.request.path, ex.request.json
        if path != "/v1" and not path.startswith("/v1/"):
            await ex.send_json(404, {"detail": "Not Found"})
            return
        ex.headers["x-request-id"] = "req_" + secrets.token_hex(16)
        headers: dict[str, str] = {}
        auth = ex.request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if self.api_key is not None and key != self.api_key:
            no_key = _error(_NO_KEY, "invalid_request_error", None)
            await ex.send_json(401, _bad_key(key) if key else no_key, headers)
        elif (method, path) == ("GET", "/v1/models"):
            data = [self._model(m) for m in self.models]
            await ex.send_json(200, {"object": "list", "data": data}, headers)
        elif method == "GET" and path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            if name in self.models:
                await ex.send_json(200, self._model(name), headers)
            else:
                missing = f"The model '{name}' does not exist"
                error = _error(missing, "invalid_request_error", "model_not_found", "model")
                await ex.send_json(404, error, headers)
        elif (method, path) != ("POST", "/v1/chat/completions"):
            invalid = f"Invalid URL ({method} {path})"
            error = _error(invalid, "invalid_request_error", None)
            await ex.send_json(404, error, headers)
        elif not isinstance(body, dict):
            unparsable = "We could not parse the JSON body of your request."
            await ex.send_json(400, _error(unparsable, "invalid_request_error", None), headers)
        elif not (model := body.get("model")) or not isinstance(model, str):
            required = "you must provide a model parameter"
            await ex.send_json(400, _error(required, "invalid_request_error", None), headers)
        else:
            await self._chat(ex, body, model, key)

    async def _chat(self, ex: Exchange, body: dict[str, Any], model: str, key: str) -> None:
        """A well-formed chat request: refused as configured, or answered."""
        if refused := [f for f in self.refuse_fields if f in body]:
            await self._refuse_field(ex, refused[0], body[refused[0]])
        elif self.context_size is not None and (
            (prompt := self.count_prompt(body)) >= self.context_size
        ):
            self._refused += 1
            await self._refuse_overflow(ex, prompt, self.context_size)
        else:
            options = body.get("stream_options") or {}
            usage = isinstance(options, dict) and options.get("include_usage") is True
            wire = _OpenAIWire(model, usage, key)
            stream = body.get("stream") is True and not self.ignore_stream
            await self.chat(ex, model, wire, stream=stream)
