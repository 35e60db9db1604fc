"""Ollama, through ``ollama.AsyncClient``, with its errors mapped to cortan's.

Ollama streams newline-delimited JSON. Its client raises ``ResponseError`` for
HTTP errors and for an ``{"error": …}`` line mid-stream, the builtin
``ConnectionError`` when nothing listens, httpx's exceptions for timeouts and
cut connections, and ``json.JSONDecodeError`` for a line that is not JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import httpx
import ollama

from cortan.config.settings import is_loopback_url
from cortan.core.errors import (
    AuthError,
    BadRequestError,
    BadResponseError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    UnreachableError,
    pull_command,
)
from cortan.core.messages import Message, ModelInfo, PullProgress
from cortan.core.options import to_ollama
from cortan.providers.base import (
    Finish,
    ModelRequest,
    Piece,
    Thinking,
    ToolCall,
    listed,
    read_listing,
    redact,
    retry_after,
    sane_reason,
    sane_timings,
    sane_usage,
    sane_window,
    shown_url,
    text_or_none,
    tls_failure,
    tls_instead,
    url_secrets,
)
from cortan.providers.lines import WholeLines
from cortan.providers.responses import BodyLimits, BoundedBody, ResponseGuard, carried
from cortan.providers.tls import get_verify

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig, Timeouts

#: Headers for the chat request this task is sending (the SDK's ``chat`` takes none).
_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar("cortan_ollama_headers", default=None)


async def _add_headers(request: httpx.Request) -> None:
    """httpx's request hook: the task's trace headers go out with its chat request."""
    if headers := _HEADERS.get():
        request.headers.update(headers)


class _BoundedStream(BoundedBody, httpx.AsyncByteStream):
    """A response body inflated and counted by cortan (cortan.providers.responses)."""


#: The timings of a chat's final line, in nanoseconds.
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class Counted(NamedTuple):
    """The whole numbers of a streamed body's lines: the SDK refuses a line whole unless
    each is an int; ``markers``, bytes that must be in a line holding one of them."""

    fields: tuple[str, ...]
    markers: tuple[bytes, ...]


#: By path: a chat's final counts and timings; a pull's progress, where a ``completed``
#: of 1.5 or a ``total`` of "big" failed ``cortan models pull`` midway.
COUNTED = {
    "/api/chat": Counted(
        ("prompt_eval_count", "eval_count", *DURATIONS), (b'_count"', b'_duration"')
    ),
    "/api/pull": Counted(("completed", "total"), (b'"completed"', b'"total"')),
}


class _CountedLines(WholeLines, httpx.AsyncByteStream):
    """A stream whose lines' numbers the SDK can read (cortan.providers.lines).

    The SDK checks each line against its model: a count of ``1.5``, ``"n/a"`` or
    ``1e400`` made the whole answer a reply cortan "cannot parse". Such a number is
    left out here, as if the server had not said; the answer (or the pull) goes on.
    """

    def __init__(self, stream: Any, counted: Counted) -> None:
        super().__init__(stream)
        self._counted = counted

    def clean(self, block: bytes) -> bytes:
        if not _marked(block, self._counted):
            return block
        return b"\n".join(_drop_wrong_counts(line, self._counted) for line in block.split(b"\n"))


def _marked(data: bytes, counted: Counted) -> bool:
    return any(marker in data for marker in counted.markers)


def _drop_wrong_counts(line: bytes, counted: Counted) -> bytes:
    if not _marked(line, counted):
        return line
    try:
        part = json.loads(line)
    except ValueError:
        return line  # the SDK says it cannot parse it
    if not isinstance(part, dict):
        return line
    wrong = [k for k in counted.fields if k in part and not _is_int(part[k])]
    for key in wrong:
        del part[key]
    return json.dumps(part).encode() if wrong else line


def _is_int(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


async def _clean_counts(response: httpx.Response) -> None:
    path = response.request.url.path.rstrip("/")
    counted = next((c for end, c in COUNTED.items() if path.endswith(end)), None)
    if counted is not None:
        response.stream = _CountedLines(response.stream, counted)


#: Seconds to wait for the end of a stream after its final message (see ``_drain``).
DRAIN_S = 0.5


class OllamaProvider:
    """One Ollama server."""

    label = "Ollama"
    # Ollama loads only the window a request asks for and cuts a longer prompt silently.
    window_option = "num_ctx"

    def __init__(
        self,
        name: str,
        url: str,
        timeouts: Timeouts,
        limits: BodyLimits | None = None,
        *,
        concurrent: bool = False,
    ) -> None:
        self.name = name
        self.url = shown_url(url)  # what messages print; the client keeps the real one
        self._secrets = url_secrets(url)
        timeout = httpx.Timeout(timeouts.total, connect=timeouts.connect)
        # Bounded bodies, no redirect to another origin (cortan.providers.responses).
        guard = ResponseGuard(
            f"Ollama at {self.url}", url, limits or BodyLimits(), ("/api/chat",), _BoundedStream
        )
        # verify: no CA bundle read for a plain-http server (cortan.providers.tls)
        verify = get_verify(url)
        self._client = ollama.AsyncClient(
            host=url,
            timeout=timeout,
            verify=verify,
            **_transport(verify, concurrent),
            event_hooks={
                "request": [guard.on_request, _add_headers],
                "response": [guard.on_response, _clean_counts],  # bounded, then cleaned
            },
            # A loopback server is reached directly, never through http_proxy: cortan
            # judges it local (no secret guard), so the prompt must not leave (issue 15).
            trust_env=not is_loopback_url(url),
        )

    async def list_models(self) -> list[ModelInfo]:
        try:
            async with self._client._client.stream("GET", "/api/tags") as reply:  # as list()
                if reply.is_error:
                    await reply.aread()
                reply.raise_for_status()
                body, whole = await read_listing(reply.aiter_bytes())
            entries = listed(body, "models", f"Ollama at {self.url}", whole=whole)
        except httpx.HTTPStatusError as exc:  # what the SDK would raise, for map_error
            error = ollama.ResponseError(exc.response.text, exc.response.status_code)
            raise self.map_error(error) from exc
        except Exception as exc:
            # `cortan models` and `cortan doctor` ask here first: the same hint as a chat
            where = f"Ollama at {self.url}"
            raise await tls_instead(self.map_error(exc), exc, self.url, where) from exc
        return [info for entry in entries if (info := self._model_info(entry)) is not None]

    def _model_info(self, entry: dict[str, Any]) -> ModelInfo | None:
        """One entry of ``/api/tags``; a field of the wrong type is left out, not fatal."""
        name = text_or_none(entry.get("model")) or text_or_none(entry.get("name"))
        if name is None:
            return None
        details = entry.get("details")
        details = details if isinstance(details, dict) else {}
        size = entry.get("size")
        return ModelInfo(
            name=name,
            provider=self.name,
            family=text_or_none(details.get("family")),
            size=size
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0
            else None,
            parameter_size=text_or_none(details.get("parameter_size")),
            digest=text_or_none(entry.get("digest")),
        )

    async def get_version(self) -> str | None:
        """The server's version (``/api/version``), or None when it does not say."""
        # The SDK has no call for it; its own HTTP client asks, with the same timeouts.
        try:
            reply = await self._client._client.get("/api/version")
            version = reply.json().get("version")
        except (httpx.HTTPError, ValueError, AttributeError, BadResponseError):
            return None
        return str(version) if version else None

    async def show_model(self, model: str) -> ModelInfo:
        try:
            shown = await self._client.show(model)
        except Exception as exc:
            raise self.map_error(exc, model) from exc
        window = next(
            (
                value
                for key, value in (shown.modelinfo or {}).items()
                if key.endswith(".context_length") and sane_window(value) is not None
            ),
            None,
        )
        details = shown.details
        capabilities = getattr(shown, "capabilities", None)
        return ModelInfo(
            name=model,
            provider=self.name,
            family=getattr(details, "family", None),
            parameter_size=getattr(details, "parameter_size", None),
            context_length=window,
            capabilities=tuple(str(c) for c in capabilities) if capabilities else None,
            quantization=getattr(details, "quantization_level", None),
        )

    async def stream_chat(self, request: ModelRequest) -> AsyncIterator[Piece]:
        messages = [_message(m) for m in request.messages]
        calls = 0  # Ollama's calls have no id: cortan numbers them
        begun = False
        # The client sends the request on the first read of the stream, in this task:
        # the hook reads the headers from the task's context then.
        _HEADERS.set(request.headers or None)
        try:
            stream = await self._client.chat(
                model=request.model,
                messages=messages,
                stream=True,
                think=cast("Any", request.think),
                format=dict(request.schema) if request.schema is not None else None,
                options=_options(request.options),
                keep_alive=cast("Any", request.options.get("keep_alive")),
                tools=[dict(tool) for tool in request.tools] or None,
            )
            # The client returns an async generator; stopping early must close its HTTP stream.
            async with aclosing(cast("AsyncGenerator[Any, None]", stream)) as parts:
                async for part in parts:
                    begun = True
                    if part.message.thinking:
                        yield Thinking(part.message.thinking)
                    if part.message.content:
                        yield part.message.content
                    for call in part.message.tool_calls or ():
                        calls += 1
                        yield _tool_call(call, calls)
                    if part.done:
                        await _drain(parts)
                        yield self._finish(part)
                        return
        except ProviderError:
            raise
        except Exception as exc:
            raise await self._failed(exc, request.model, begun=begun) from exc
        raise ServerError(f"Ollama at {self.url} ended the answer without its final message")

    @staticmethod
    def _finish(part: Any) -> Finish:
        timings = sane_timings({name: getattr(part, name, None) for name in DURATIONS})
        usage = sane_usage(part.prompt_eval_count, part.eval_count)
        reason = sane_reason(part.done_reason) if part.done_reason else "stop"
        return Finish(finish_reason=reason, usage=usage, server_timings=timings)

    async def pull_model(self, model: str) -> AsyncIterator[PullProgress]:
        """Ollama's ``/api/pull``: the server downloads ``model``, saying how far it got.

        A failure found after the stream began (no such model in the registry) comes as
        an error line, which the SDK raises; it is mapped like any other. Ollama keeps
        the layers it has, so pulling again resumes.
        """
        try:
            stream = await self._client.pull(model, stream=True)
            async for part in stream:
                yield PullProgress(
                    str(part.status or ""),
                    part.digest or None,
                    part.total if isinstance(part.total, int) else None,
                    part.completed if isinstance(part.completed, int) else None,
                )
        except ollama.ResponseError as exc:
            if "file does not exist" in str(exc.error):  # Ollama's words for no such model
                raise ModelNotFoundError(
                    f"Ollama at {self.url} found no model {model!r} to pull: "
                    "check the name at ollama.com/library"
                ) from exc
            raise self.map_error(exc, model) from exc
        except Exception as exc:
            raise self.map_error(exc, model) from exc

    async def _failed(self, exc: BaseException, model: str, *, begun: bool) -> ProviderError:
        """Why a chat failed; before its first piece, a cut connection may mean TLS."""
        error = self.map_error(exc, model)
        if begun:
            return error
        return await tls_instead(error, exc, self.url, f"Ollama at {self.url}")

    def map_error(self, exc: BaseException, model: str | None = None) -> ProviderError:
        """Turn a library exception into the sentence a user needs, secrets blotted out."""
        return redact(self._map_error(exc, model), self._secrets)

    def _map_error(self, exc: BaseException, model: str | None) -> ProviderError:
        where = f"Ollama at {self.url}"
        if (refused := carried(exc)) is not None:  # a bound or a redirect (responses.py)
            return refused
        if isinstance(exc, ollama.ResponseError):
            return self._map_response_error(exc, model)
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeoutError(f"{where} did not answer in time")
        if (tls := tls_failure(exc)) is not None:
            return UnreachableError(f"TLS with {where} failed: {tls}")
        if isinstance(exc, httpx.ConnectError | ConnectionError):
            return UnreachableError(f"cannot reach {where}: is `ollama serve` running?")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return ServerError(f"{where} closed the connection before the answer was complete")
        if isinstance(exc, json.JSONDecodeError | ValueError):
            return BadResponseError(f"{where} sent a reply cortan cannot parse")
        if isinstance(exc, httpx.HTTPError):
            return UnreachableError(f"cannot talk to {where}: {type(exc).__name__}")
        return BadResponseError(f"{where} failed unexpectedly: {type(exc).__name__}")

    def _map_response_error(self, exc: ollama.ResponseError, model: str | None) -> ProviderError:
        status, text = exc.status_code, str(exc.error).strip()
        where = f"Ollama at {self.url}"
        if not text:  # a proxy in front, or a bare server error: no body at all (issue 21)
            text = "no reason given"
            if status == 404:
                return BadRequestError(
                    f"{where} answered 404 with no reason given: is that URL an Ollama server?"
                )
        if status == 404 and "not found" in text:
            if model is None:
                return ModelNotFoundError(f"the model is not on {where}")
            pull = pull_command(self.name, model)
            return ModelNotFoundError(
                f"model {model!r} is not on {where}: run `{pull}` "
                f"(or `ollama pull {shlex.quote(model)}` on that host)"
            )
        if status in (401, 403):
            return AuthError(f"{where} refused the request ({status}): {text}")
        if status == 429:
            return RateLimitedError(f"{where} is rate limiting requests: {text}", _retry_after(exc))
        if status >= 500 or status == -1:
            return ServerError(f"{where} reported an error: {text}")
        return BadRequestError(f"{where} rejected the request ({status}): {text}")

    async def aclose(self) -> None:
        await self._client._client.aclose()


def _retry_after(exc: ollama.ResponseError) -> float | None:
    """The 429's ``retry-after``. The SDK keeps only the body and the status
    (``raise ResponseError(…) from None``), but the httpx error it replaced, with the
    response and its headers, stays the exception's context."""
    context = exc.__context__
    return (
        retry_after(context.response.headers)
        if isinstance(context, httpx.HTTPStatusError)
        else None
    )


def _message(message: Message) -> dict[str, Any]:
    """One message as Ollama takes it: images as base64 beside the text; an assistant's
    tool calls with their arguments as objects; a tool's result naming its tool."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:
        wire["images"] = [image.b64() for image in message.images]
    if message.tool_calls:
        wire["tool_calls"] = [
            {"function": {"name": call.name, "arguments": _arguments_object(call.arguments)}}
            for call in message.tool_calls
        ]
    if message.tool_name is not None:
        wire["tool_name"] = message.tool_name
    return wire


def _arguments_object(arguments: str) -> dict[str, Any]:
    """A call's arguments as the object Ollama takes back; text that was not an object
    (the model wrote bad JSON, and was told so) goes back as an empty one."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool_call(call: Any, number: int) -> ToolCall:
    """One of Ollama's calls: its arguments arrive as an object, kept here as JSON text."""
    function = call.function
    return ToolCall(f"call_{number}", str(function.name), json.dumps(dict(function.arguments)))


def _options(options: Mapping[str, object]) -> dict[str, object] | None:
    """cortan's option names in Ollama's (the table in cortan.core.options says which);
    ``keep_alive`` is a field of the request's own, beside them."""
    return to_ollama({k: v for k, v in options.items() if k != "keep_alive"}) or None


def make_provider(
    name: str,
    url: str,
    config: ProviderConfig,
    timeouts: Timeouts,
    limits: BodyLimits | None = None,
    *,
    concurrent: bool = False,
) -> OllamaProvider:
    """Factory registered in :data:`cortan.providers.KINDS`."""
    return OllamaProvider(name, url, timeouts, limits, concurrent=concurrent)


def _transport(verify: ssl.SSLContext | bool, concurrent: bool) -> dict[str, Any]:
    if not concurrent:
        return {}
    from cortan.providers.transport import AiohttpTransport

    return {"transport": AiohttpTransport(httpx, verify=verify)}


async def _drain(parts: AsyncGenerator[Any, None]) -> None:
    """Read the stream to its end after the final message, so its connection is reused.

    The body ends right after Ollama's ``done`` line; closing the response before
    reading that end made the HTTP client drop the connection, a new TCP connection
    per request (a batch of thousands). A server that sends more, or nothing, is
    left after ``DRAIN_S``: its connection is closed as before.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_S):
            await anext(parts)
