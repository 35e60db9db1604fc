"""Ollama, over its native API on an httpx client, with its errors mapped to cortan's.

Ollama streams newline-delimited JSON. cortan speaks it without the ``ollama`` SDK
(``ollama_wire.py`` shapes the bodies and reads the lines; docs/performance.md says
what the SDK cost). What can go wrong: :class:`~cortan.providers.ollama_wire.Refused`
for an HTTP error or an ``{"error": …}`` line mid-stream, httpx's exceptions when
nothing listens, for timeouts and cut connections, and ``ValueError`` for a line that
is not the JSON it should be; :meth:`OllamaProvider.map_error` says each in a sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import httpx

from cortan import __version__
from cortan.config.settings import is_loopback_url, normalize_ollama_host
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
from cortan.core.messages import ModelInfo, PullProgress
from cortan.providers.base import (
    Finish,
    ModelRequest,
    Piece,
    ToolCall,
    endpoint,
    listed,
    read_listing,
    redact,
    retry_after,
    shown_url,
    text_or_none,
    tls_failure,
    tls_instead,
    url_secrets,
)
from cortan.providers.ollama_wire import (
    Refused,
    chat_body,
    chat_finish,
    chat_pieces,
    checked,
    error_text,
    is_done,
    pull_progress,
    read_lines,
    refused,
    shown_model,
)
from cortan.providers.responses import BodyLimits, BoundedBody, ResponseGuard, carried
from cortan.providers.tls import get_verify

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig, Timeouts


class _BoundedStream(BoundedBody, httpx.AsyncByteStream):
    """A response body inflated and counted by cortan (cortan.providers.responses)."""


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
            f"Ollama at {self.url}",
            url,
            limits or BodyLimits(),
            ("/api/chat",),
            _BoundedStream,
            progress_paths=("/api/pull",),
        )
        # verify: no CA bundle read for a plain-http server (cortan.providers.tls)
        verify = get_verify(url)
        self._client = httpx.AsyncClient(
            base_url=normalize_ollama_host(url),
            timeout=timeout,
            verify=verify,
            headers=_headers(),
            follow_redirects=True,  # as the SDK did: the guard keeps them to one origin
            **_transport(verify, concurrent),
            event_hooks={"request": [guard.on_request], "response": [guard.on_response]},
            # A loopback server is reached directly, never through http_proxy: cortan
            # judges it local (no secret guard), so the prompt must not leave (issue 15).
            trust_env=not is_loopback_url(url),
        )
        if concurrent:  # one client sends for many: no cookie of one rides on the others'
            from cortan.providers.transport import keep_no_cookies

            keep_no_cookies(self._client, httpx)
        self._chat_url = endpoint(self._client, "api/chat")

    async def list_models(self) -> list[ModelInfo]:
        try:
            async with self._client.stream("GET", "/api/tags") as reply:
                await _refuse_error(reply)
                body, whole = await read_listing(reply.aiter_bytes())
            entries = listed(body, "models", f"Ollama at {self.url}", whole=whole)
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
        try:
            reply = await self._client.get("/api/version")
            version = reply.json().get("version")
        except (httpx.HTTPError, ValueError, AttributeError, BadResponseError):
            return None
        return str(version) if version else None

    async def show_model(self, model: str) -> ModelInfo:
        """``/api/show``: the window, the capabilities; a field of the wrong type is
        left out (cortan.providers.ollama_wire)."""
        try:
            reply = await self._client.post("/api/show", json={"model": model})
            await _refuse_error(reply)
            return shown_model(reply.json(), model, self.name)
        except Exception as exc:
            raise self.map_error(exc, model) from exc

    async def stream_chat(self, request: ModelRequest) -> AsyncIterator[Piece]:
        calls = 0  # Ollama's calls have no id: cortan numbers them
        begun = False
        finish: Finish | None = None
        try:
            async with self._client.stream(
                "POST", self._chat_url, json=chat_body(request), headers=request.headers or None
            ) as reply:
                await _refuse_error(reply)
                async with aclosing(read_lines(reply.aiter_raw())) as lines:
                    async for line in lines:
                        part = checked(line)
                        pieces = chat_pieces(part, calls)
                        begun = True
                        for piece in pieces:
                            calls += isinstance(piece, ToolCall)
                            yield piece
                        if is_done(part):
                            finish = chat_finish(part)
                            await _drain(lines)
                            break
        except ProviderError:
            raise
        except Exception as exc:
            raise await self._failed(exc, request.model, begun=begun) from exc
        if finish is None:
            raise ServerError(f"Ollama at {self.url} ended the answer without its final message")
        yield finish  # after the response is closed: its connection is free for the next

    async def pull_model(self, model: str) -> AsyncIterator[PullProgress]:
        """Ollama's ``/api/pull``: the server downloads ``model``, saying how far it got.

        A failure found after the stream began (no such model in the registry) comes as
        an error line; it is mapped like any other. Ollama keeps the layers it has, so
        pulling again resumes.
        """
        body = {"model": model, "insecure": False, "stream": True}
        try:
            async with self._client.stream("POST", "/api/pull", json=body) as reply:
                await _refuse_error(reply)
                async with aclosing(read_lines(reply.aiter_raw())) as lines:
                    async for line in lines:
                        yield pull_progress(checked(line))
        except Refused as exc:
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
        if isinstance(exc, Refused):
            return self._map_response_error(exc, model)
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeoutError(f"{where} did not answer in time")
        if (tls := tls_failure(exc)) is not None:
            return UnreachableError(f"TLS with {where} failed: {tls}")
        if isinstance(exc, httpx.ConnectError | ConnectionError):
            return UnreachableError(f"cannot reach {where}: is `ollama serve` running?")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return ServerError(f"{where} closed the connection before the answer was complete")
        if isinstance(exc, json.JSONDecodeError | ValueError | RecursionError):  # too deep
            return BadResponseError(f"{where} sent a reply cortan cannot parse")
        if isinstance(exc, httpx.HTTPError):
            return UnreachableError(f"cannot talk to {where}: {type(exc).__name__}")
        return BadResponseError(f"{where} failed unexpectedly: {type(exc).__name__}")

    def _map_response_error(self, exc: Refused, model: str | None) -> ProviderError:
        status, text = exc.status_code, error_text(exc.error).strip()
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
            return RateLimitedError(
                f"{where} is rate limiting requests: {text}", retry_after(exc.headers)
            )
        if status >= 500 or status == -1:
            return ServerError(f"{where} reported an error: {text}")
        return BadRequestError(f"{where} rejected the request ({status}): {text}")

    async def aclose(self) -> None:
        await self._client.aclose()


async def _refuse_error(reply: httpx.Response) -> None:
    """An error status as :class:`Refused`, with what the body says (read whole:
    the guard bounds it)."""
    if not reply.is_success:
        await reply.aread()
        raise refused(reply.status_code, reply.text, reply.headers)


def _headers() -> dict[str, str]:
    """The headers of every request. ``OLLAMA_API_KEY`` is the bearer token, as the
    SDK sends it: a cortan gateway (``cortan serve``) in front of Ollama asks for it."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"cortan/{__version__}",
    }
    if key := os.environ.get("OLLAMA_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    return headers


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
