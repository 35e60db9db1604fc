"""OpenAI and OpenAI-compatible servers (vLLM, LM Studio, llama.cpp), on an httpx2 client.

cortan speaks the chat completions wire without the ``openai`` SDK (docs/performance.md
says what the SDK cost): one request, never retried here, since the model manager
owns retries and an answer is never stitched from two attempts. Usage comes from
the final chunk that ``stream_options.include_usage`` asks for; servers that ignore
the option simply report no usage.

This module holds the provider: its HTTP client and the calls it makes. Beside it,
``completions.py`` shapes the request body and reads the streamed chunks,
``sse.py`` reads the event stream into chunks, ``fields.py`` learns which body
fields a server takes, ``openai_errors.py`` says each failure in a sentence, and
``lines.py`` and ``responses.py`` clean and bound what comes back before it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx2

from cortan import __version__
from cortan.config.keys import get_api_key
from cortan.config.settings import DEFAULT_OPENAI_URL, is_loopback_url
from cortan.core.errors import AuthError, ProviderError, ServerError
from cortan.core.messages import ModelInfo, Usage
from cortan.providers.base import (
    Adjusted,
    Finish,
    ModelRequest,
    Piece,
    endpoint,
    listed,
    read_listing,
    redact,
    sane_reason,
    shown_url,
    text_or_none,
    tls_instead,
    url_secrets,
)
from cortan.providers.completions import (
    CallParts,
    body_options,
    chunk_usage,
    read_chunk,
    wire_message,
)
from cortan.providers.fields import Fields
from cortan.providers.lines import EventLines, WholeAnswer
from cortan.providers.openai_errors import (
    TRANSPORT_ERRORS,
    OpenAIErrors,
    StatusError,
    Unreached,
    error_text,
    status_error,
)
from cortan.providers.responses import BodyLimits, BoundedBody, ResponseGuard
from cortan.providers.sse import read_chunks
from cortan.providers.tls import get_verify, load_system

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig, Timeouts

# Local servers accept any key, and some proxies insist on one: the SDK sent this.
NO_KEY = "cortan-no-key"
#: Connections of one client, as the SDK had them (its DEFAULT_CONNECTION_LIMITS).
LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
#: Seconds to read a stream's end after ``[DONE]``, so its connection is reused (the SDK's).
DRAIN_S = 0.1


class _BoundedStream(BoundedBody, httpx2.AsyncByteStream):
    """A response body inflated and counted by cortan (cortan.providers.responses)."""


class OpenAIProvider:
    """One OpenAI-compatible endpoint."""

    window_option = None  # the server uses the model's whole window

    def __init__(
        self,
        name: str,
        url: str,
        api_key: str | None,
        timeouts: Timeouts,
        limits: BodyLimits | None = None,
        *,
        concurrent: bool = False,
        length_field: str | None = None,
    ) -> None:
        self.name = name
        self.url = shown_url(url)  # what messages print; the client keeps the real one
        self._fields = Fields(url, length_field)
        self._secrets = [*url_secrets(url), *([api_key] if api_key else [])]
        self.label = "OpenAI" if url == DEFAULT_OPENAI_URL else "the OpenAI-compatible server"
        variable = "OPENAI_API_KEY" if name == "openai" else f"the key for {name!r}"
        self._set_key = f"{variable} or run `cortan keys set {name}`"
        self._has_key = api_key is not None
        self._errors = OpenAIErrors(
            self.label,
            self.url,
            has_key=self._has_key,
            key_variable=variable,
            set_key=self._set_key,
        )
        timeout = httpx2.Timeout(timeouts.total, connect=timeouts.connect)
        # Bounded bodies, no redirect to another origin (cortan.providers.responses).
        guard = ResponseGuard(
            f"{self.label} at {self.url}",
            url,
            limits or BodyLimits(),
            ("/chat/completions",),
            _BoundedStream,
        )
        self._client = _make_http_client(
            url, timeout, guard, _headers(api_key or NO_KEY), concurrent=concurrent
        )
        self._chat_url = endpoint(self._client, "chat/completions")

    def _require_key(self) -> None:
        # OpenAI itself always needs a key: say so without a round trip that can only fail.
        if not self._has_key and self.url == DEFAULT_OPENAI_URL:
            raise AuthError(f"OpenAI needs an API key: set {self._set_key}")

    async def list_models(self) -> list[ModelInfo]:
        self._require_key()
        try:
            reply = await self._send(self._client.build_request("GET", "models"))
            try:
                body, whole = await read_listing(reply.aiter_bytes())
            finally:
                await reply.aclose()
            entries = listed(body, "data", f"{self.label} at {self.url}", whole=whole)
        except Exception as exc:
            where = f"{self.label} at {self.url}"  # the https:// hint, as chats give it
            raise await tls_instead(self.map_error(exc), exc, self.url, where) from exc
        names = (text_or_none(entry.get("id")) for entry in entries)
        return [ModelInfo(name=name, provider=self.name) for name in names if name]

    async def get_version(self) -> str | None:
        return None  # the API has no version call

    async def show_model(self, model: str) -> ModelInfo:
        return ModelInfo(model, self.name)  # the API says nothing; config or defaults apply

    async def stream_chat(self, request: ModelRequest) -> AsyncIterator[Piece]:
        """Stream the answer of choice 0 only.

        cortan asks for one choice; a server that sends more (``n`` set by a proxy, or
        a hostile one) interleaves chunks of choices 0, 1, … in one stream, and mixing
        them would make one answer of two (issue 15). Chunks of any other index are
        skipped, their text and their finish_reason alike.
        """
        finish_reason: str | None = None
        usage = Usage()
        calls = CallParts()
        begun = False
        self._require_key()
        body, notes = self._fields.shape(request.model, body_options(request), request.options)
        try:
            reply = await self._open(request, body, notes)
            for note in notes:  # before the answer: the engine tells the user
                yield Adjusted(f"{self.label} at {self.url} {note}")
            try:
                async for chunk in _chunks(reply):
                    begun = True
                    items, reason, counts = read_chunk(chunk, calls)
                    for item in items:
                        yield item
                    finish_reason = sane_reason(reason) if reason else finish_reason
                    usage = usage if counts is None else chunk_usage(counts)
            finally:
                await reply.aclose()
        except ProviderError:
            raise
        except Exception as exc:
            raise await self._failed(exc, request.model, begun=begun) from exc
        if finish_reason is None:  # the stream ended cleanly, but mid-answer (or empty)
            raise ServerError(
                f"{self.label} at {self.url} ended the answer without finishing it "
                "(no finish_reason): it may be cut short"
            )
        for call in calls.complete():
            yield call
        yield Finish(finish_reason=finish_reason, usage=usage)

    async def _open(
        self, request: ModelRequest, body: dict[str, Any], notes: list[str]
    ) -> httpx2.Response:
        """The answer's response, its body not read yet. A 400 or 422 that refuses a
        field the answer can go without has ``body`` changed and sent again, and
        ``notes`` say what changed (cortan.providers.fields); any other refusal is raised."""
        tried: set[str] = set()  # the fields changed so far: each once
        while True:
            try:
                return await self._send(self._chat_request(request, body))
            except StatusError as exc:
                if exc.status_code not in (400, 422):
                    raise
                said = self._fields.refused(request.model, body, tried, exc.body, error_text(exc))
                if said is None:
                    raise
                if said:
                    notes.append(said)

    def _chat_request(self, request: ModelRequest, body: dict[str, Any]) -> httpx2.Request:
        """The chat's POST: cortan's body is already the wire's JSON (completions.py);
        ``extra_body``'s fields join it at the top, over any of the same name."""
        fields = dict(body)
        extra = fields.pop("extra_body", None)
        sent = {
            "model": request.model,
            "messages": [wire_message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            **fields,
            **(extra if isinstance(extra, dict) else {}),
        }
        return self._client.build_request(
            "POST", self._chat_url, content=_dumps(sent), headers=request.headers or None
        )

    async def _send(self, request: httpx2.Request) -> httpx2.Response:
        """``request`` sent, its response's body not read: a status other than 2xx is
        :class:`StatusError` with what the body says (read whole: the guard bounds it),
        a transport failure :class:`Unreached` (a timeout as itself)."""
        try:
            reply = await self._client.send(request, stream=True)
        except httpx2.TimeoutException:
            raise
        except TRANSPORT_ERRORS as exc:
            raise Unreached(type(exc).__name__) from exc
        if reply.is_success:
            return reply
        try:
            await reply.aread()
        finally:
            await reply.aclose()
        raise status_error(reply.status_code, reply.text, reply.headers)

    async def _failed(self, exc: BaseException, model: str, *, begun: bool) -> ProviderError:
        """Why a chat failed; before its first piece, a cut connection may mean TLS."""
        error = self.map_error(exc, model)
        if begun:
            return error
        return await tls_instead(error, exc, self.url, f"{self.label} at {self.url}")

    def map_error(self, exc: BaseException, model: str | None = None) -> ProviderError:
        """Turn a library exception into the sentence a user needs, secrets blotted out."""
        return redact(self._errors.explain(exc, model), self._secrets)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _chunks(reply: httpx2.Response) -> AsyncIterator[object]:
    """The chunks of a chat's body; after ``[DONE]`` the rest is read (briefly), so an
    HTTP/1.1 connection goes back to the pool. A transport failure is :class:`Unreached`."""
    try:
        async for chunk in read_chunks(reply.aiter_bytes()):
            yield chunk
    except httpx2.TimeoutException:
        raise
    except TRANSPORT_ERRORS as exc:
        raise Unreached(type(exc).__name__) from exc
    rest = reply.stream
    if (
        reply.http_version == "HTTP/1.1"
        and not reply.is_closed
        and isinstance(rest, httpx2.AsyncByteStream)
    ):
        with contextlib.suppress(Exception):  # the answer is whole: nothing here may fail it
            async with asyncio.timeout(DRAIN_S):
                async for _ in rest:
                    await asyncio.sleep(0)


def _dumps(body: dict[str, Any]) -> bytes:
    """``body`` as the SDK wrote it: compact UTF-8, no NaN (which is not JSON)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _headers(api_key: str) -> dict[str, str]:
    """The headers of every request: the key as a bearer token, and the organization
    and project from ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` as the SDK sent them."""
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": f"cortan/{__version__}",
        "Authorization": f"Bearer {api_key}",
    }
    for variable, header in (
        ("OPENAI_ORG_ID", "OpenAI-Organization"),
        ("OPENAI_PROJECT_ID", "OpenAI-Project"),
    ):
        if value := os.environ.get(variable):
            if not all(" " <= c <= "~" for c in value):  # a header holds one line of ASCII
                raise AuthError(f"{variable} is malformed: an id is one line of plain ASCII")
            headers[header] = value
    return headers


def _make_http_client(
    url: str,
    timeout: httpx2.Timeout,
    guard: ResponseGuard,
    headers: dict[str, str],
    *,
    concurrent: bool = False,
) -> httpx2.AsyncClient:
    """The client the SDK made, with four changes: plain http reads no CA bundle
    (cortan.providers.tls); a loopback server is reached directly, never through
    http_proxy, since cortan judges it local (no secret guard) and the prompt and the
    key must not leave; ``guard`` bounds bodies and redirects (issue 15); and its event
    streams are cleaned before they are read (:mod:`cortan.providers.lines`, issue 21)."""
    direct = is_loopback_url(url)
    verify = get_verify(url, load_system)
    if concurrent:  # the gateway: aiohttp underneath (cortan.providers.transport)
        from cortan.providers.transport import AiohttpTransport

        extra: dict[str, Any] = {"transport": AiohttpTransport(httpx2, verify=verify)}
    else:
        extra = {}
    client = httpx2.AsyncClient(
        base_url=url,
        headers=headers,
        verify=verify,
        **extra,
        timeout=timeout,
        limits=LIMITS,
        follow_redirects=True,  # as the SDK did: the guard keeps them to one origin
        trust_env=not direct,
        event_hooks={
            "request": [guard.on_request],
            "response": [guard.on_response, _clean_events],  # bounded, then cleaned
        },
    )
    if concurrent:  # one client sends for many: no cookie of one rides on the others'
        from cortan.providers.transport import keep_no_cookies

        keep_no_cookies(client, httpx2)
    return client


async def _clean_events(response: httpx2.Response) -> None:
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/event-stream"):
        response.stream = _EventStream(response.stream)
    elif response.status_code == 200 and kind.startswith("application/json") and _chat(response):
        response.stream = _WholeAnswer(response.stream)  # stream: true ignored


def _chat(response: httpx2.Response) -> bool:
    """Whether ``response`` answers a chat, which cortan always asks to be streamed."""
    return response.request.url.path.rstrip("/").endswith("/chat/completions")


class _EventStream(EventLines, httpx2.AsyncByteStream):
    """An event stream cleaned before it is parsed (cortan.providers.lines)."""


class _WholeAnswer(WholeAnswer, httpx2.AsyncByteStream):
    """A whole answer handed on as events (cortan.providers.lines)."""


def make_provider(
    name: str,
    url: str,
    config: ProviderConfig,
    timeouts: Timeouts,
    limits: BodyLimits | None = None,
    *,
    concurrent: bool = False,
) -> OpenAIProvider:
    """Factory registered in :data:`cortan.providers.KINDS`."""
    return OpenAIProvider(
        name,
        url,
        get_api_key(name, config),
        timeouts,
        limits,
        concurrent=concurrent,
        length_field=config.max_tokens_field,
    )
