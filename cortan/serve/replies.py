"""What the gateway sends back, in each API's own shape, and how it reads a body.

Layer: serve. Every error is one sentence, in the JSON each client library reads:
OpenAI's ``{"error": {"message", "type", "code"}}`` under ``/v1`` and elsewhere,
Ollama's ``{"error": "..."}`` under ``/api``. How a request ended in the engine
maps to a status here (:func:`get_status`), once for every endpoint.

Bodies are read bounded in size (``serve.max_body_bytes``, 413 past it, the
``Content-Length`` believed only to refuse early) and in time
(``serve.body_timeout``, 408), and must be one JSON object (400 otherwise).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from cortan.core.events import ChatEnded, ChatFailed, ChatFinished
from cortan.core.text import find_lone_surrogate, json_path, make_visible, shorten

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = b"application/json"

#: What a client is told of a request that failed on a fault of cortan's own.
FAULT = "cortan serve failed to answer this request (an internal error: its log says which)"


def log_fault(request_id: str, exc: BaseException) -> None:
    """Say a fault of cortan's own on the access log, beside the request's own line
    (unless ``--quiet``), naming the request; ``--debug`` adds the traceback. The
    client is told :data:`FAULT`, never the exception."""
    logging.getLogger("cortan.serve.access").error(
        "request_id=%s failed on an internal error: %s %r",
        request_id, type(exc).__name__, shorten(str(exc), 300),
    )  # fmt: skip
    logging.getLogger("cortan.serve").debug(
        "the internal error of request_id=%s", request_id, exc_info=exc
    )


#: How a failed request's kind reads as HTTP: the engine's kinds, then the gateway's own.
STATUS_BY_KIND: Mapping[str, int] = {
    "input": 400,
    "secret": 400,
    "bad_request": 400,
    "usage": 400,  # a model name that does not resolve (``ollama:``)
    "config": 400,
    "capability": 400,
    "context_overflow": 400,  # still too long once fitted: OpenAI's context_length_exceeded
    "model_not_found": 404,
    "rate_limited": 429,
    "queue_full": 429,
    "auth": 502,
    "unreachable": 502,
    "server_error": 502,
    "bad_response": 502,
    "schema": 502,  # the model's answer did not fill the schema, even mended once
    "timeout": 504,
}
#: OpenAI's error ``type`` for a status.
TYPE_BY_STATUS: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    421: "invalid_request_error",
    429: "rate_limit_error",
    501: "invalid_request_error",
    503: "server_overloaded",
}


class RequestError(Exception):
    """A request the gateway refuses before the engine sees it: status, kind, sentence."""

    def __init__(
        self, status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.headers = dict(headers or {})


def get_status(ended: ChatEnded) -> int:
    """The HTTP status of a request that ended before anything was sent to its client."""
    if isinstance(ended, ChatFailed):
        return get_kind_status(ended.kind)
    return 503  # cancelled before the first piece: the gateway is stopping


def get_retry_after(ended: ChatEnded) -> dict[str, str]:
    """``Retry-After`` for an upstream that asked to wait: the client's SDK waits as long
    (without it, the OpenAI SDK retried after half a second into the same refusal)."""
    if not isinstance(ended, ChatFailed) or ended.retry_after is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(ended.retry_after)))}


def get_kind_status(kind: str) -> int:
    """The HTTP status of an engine error's ``kind``."""
    return STATUS_BY_KIND.get(kind, 500)


def is_ollama(scope: Mapping[str, Any]) -> bool:
    return str(scope.get("path", "")).startswith("/api/")


def error_body(scope: Scope, status: int, kind: str, message: str) -> bytes:
    """The error as the client's own library reads it."""
    if is_ollama(scope):
        return json.dumps({"error": message}).encode()
    return openai_error(status, kind, message)


def openai_error(status: int, kind: str, message: str) -> bytes:
    """OpenAI's error object: the type its SDK reads from the status, the kind as ``code``."""
    kind_type = TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "api_error")
    return json.dumps({"error": {"message": message, "type": kind_type, "code": kind}}).encode()


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON_TYPE,
    headers: Mapping[str, str] | None = None,
    raw_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """One whole response; ``raw_headers`` may repeat a name (one notice each)."""
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    raw += raw_headers
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: object) -> None:
    await send_bytes(send, status, json.dumps(obj).encode())


async def send_error(send: Send, scope: Scope, error: RequestError) -> None:
    body = error_body(scope, error.status, error.kind, str(error))
    await send_bytes(send, error.status, body, headers=error.headers)


#: On a refusal before the whole body was read: the rest of it would otherwise be read
#: (and thrown away) as long as the client sends, and after an ``Expect: 100-continue``
#: the client's next request would be taken for the body it never sent.
CLOSE = {"connection": "close"}


def too_large(limit: int) -> RequestError:
    return RequestError(
        413, "body_too_large", f"the request body is over the gateway's {limit} byte limit "
        "(setting serve.max_body_bytes)", CLOSE,
    )  # fmt: skip


async def read_json(scope: Scope, receive: Receive, *, limit: int, seconds: float) -> Any:
    """The body as JSON, read within ``limit`` bytes and ``seconds``."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise too_large(limit)
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            raise RequestError(
                415, "content_encoding", "the gateway takes request bodies uncompressed "
                f"(Content-Encoding {value[:40].decode('latin-1')!r})", CLOSE,
            )  # fmt: skip
    try:
        async with asyncio.timeout(seconds):
            body = await _read_body(receive, limit)
    except TimeoutError:
        raise RequestError(
            408, "body_timeout", f"the request body did not arrive within {seconds:g} s", CLOSE
        ) from None
    return parse_json(body, "the request body")


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON, or a 400 with one sentence: for bodies and WebSocket messages alike.

    A string holding a lone surrogate (``"\\ud800"`` escaped alone) is refused here,
    wherever it is: it cannot be encoded, so as a model name it failed the store, and
    in ``stop`` or a schema it failed the request to the model and was blamed on the
    model's server. Only a body that has such an escape at all is looked through.
    """
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "bad_json", f"{what} is not valid JSON") from None
    except RecursionError:  # json's C scanner recurses once per level of nesting
        raise RequestError(400, "bad_json", f"{what} is JSON nested too deeply") from None
    if _may_hold_surrogate(text) and (found := find_lone_surrogate(value)) is not None:
        parts, in_key = found
        where = f"`{make_visible(shorten(json_path(parts), 100))}`" if parts else "its top level"
        if in_key:
            where = f"a key of {where}"
        raise RequestError(
            400, "bad_unicode", f"{what} holds a lone surrogate in {where}: JSON text "
            "must be valid Unicode (a \\uD800-\\uDFFF escape only as half of a pair)",
        )  # fmt: skip
    return value


def _may_hold_surrogate(text: str | bytes) -> bool:
    """Whether the JSON text has an escape that may stand for a surrogate."""
    if isinstance(text, bytes):
        return b"\\ud" in text or b"\\uD" in text
    return "\\ud" in text or "\\uD" in text


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(499, "client_gone", "the client went away mid-request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def get_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(400, "bad_request", f"the body of {what} must be a JSON object")
    return body


def refuse(message: str, kind: str = "bad_request", status: int = 400) -> RequestError:
    """A 400 (by default) with one sentence."""
    return RequestError(status, kind, message)


def as_document(ended: ChatFinished) -> ChatFinished:
    """An answer that filled a schema, as the JSON document alone: the engine accepts one
    a model fenced in a code block, which a client parsing the content would not."""
    if ended.data is None:
        return ended
    return ended._replace(content=json.dumps(ended.data, ensure_ascii=False))
