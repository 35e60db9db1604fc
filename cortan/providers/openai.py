"""OpenAI and OpenAI-compatible servers (vLLM, LM Studio, llama.cpp) via ``openai.AsyncOpenAI``.

The SDK's own retries are off (``max_retries=0``): the model manager owns
retries, so an answer is never stitched from two attempts. Usage comes from the
final chunk that ``stream_options.include_usage`` asks for; servers that ignore
the option simply report no usage.

This module holds the provider: its SDK client and the calls it makes. Beside it,
without the SDK, ``completions.py`` shapes the request body and reads the streamed
chunks, and ``fields.py`` learns which body fields a server takes;
``openai_errors.py`` maps the SDK's exceptions to cortan's errors; ``lines.py`` and
``responses.py`` clean and bound what comes back before the SDK reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx2
import openai

from cortan.config.keys import get_api_key
from cortan.config.settings import DEFAULT_OPENAI_URL, is_loopback_url
from cortan.core.errors import AuthError, ProviderError, ServerError
from cortan.core.messages import ModelInfo, Usage
from cortan.providers.base import (
    Adjusted,
    Finish,
    ModelRequest,
    Piece,
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
from cortan.providers.openai_errors import OpenAIErrors, error_text
from cortan.providers.responses import BodyLimits, BoundedBody, ResponseGuard
from cortan.providers.tls import get_verify, load_system

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig, Timeouts

# Local servers accept any key but the SDK insists on one.
NO_KEY = "cortan-no-key"


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
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=url,
            max_retries=0,
            timeout=timeout,
            http_client=_make_http_client(url, timeout, guard, concurrent=concurrent),
        )

    def _require_key(self) -> None:
        # OpenAI itself always needs a key: say so without a round trip that can only fail.
        if not self._has_key and self.url == DEFAULT_OPENAI_URL:
            raise AuthError(f"OpenAI needs an API key: set {self._set_key}")

    async def list_models(self) -> list[ModelInfo]:
        self._require_key()
        try:
            reply = await self._client.get("/models", cast_to=httpx2.Response, stream=True)
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
            stream = await self._open(request, body, notes)
            for note in notes:  # before the answer: the engine tells the user
                yield Adjusted(f"{self.label} at {self.url} {note}")
            async with stream:
                async for chunk in stream:
                    begun = True
                    items, reason, counts = read_chunk(chunk, calls)
                    for item in items:
                        yield item
                    finish_reason = sane_reason(reason) if reason else finish_reason
                    usage = usage if counts is None else chunk_usage(counts)
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

    async def _open(self, request: ModelRequest, body: dict[str, Any], notes: list[str]) -> Any:
        """The answer's stream. A 400 that refuses a field the answer can go without has
        ``body`` changed and sent again, and ``notes`` say what changed
        (cortan.providers.fields); any other refusal is raised."""
        tried: set[str] = set()  # the fields changed so far: each once
        while True:
            try:
                return await self._create(request, body)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                said = self._fields.refused(request.model, body, tried, exc.body, error_text(exc))
                if said is None:
                    raise
                if said:
                    notes.append(said)

    async def _create(self, request: ModelRequest, body: dict[str, Any]) -> Any:
        """The SDK's ``chat.completions.create`` without its request transform: that walks
        every message against the SDK's typed dicts (a tenth of the gateway's CPU on
        this path), and cortan's body is already the wire's JSON (completions.py)."""
        options: dict[str, Any] = {"security": {"bearer_auth": True}}
        if request.headers:
            options["headers"] = dict(request.headers)
        fields = dict(body)
        if "extra_body" in fields:
            options["extra_json"] = fields.pop("extra_body")
        sent = {
            "model": request.model,
            "messages": [wire_message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            **fields,
        }
        post: Any = self._client.post  # Any: RequestOptions is the SDK's private type
        return await post(
            "/chat/completions",
            cast_to=object,
            body=sent,
            options=options,
            stream=True,
            stream_cls=openai.AsyncStream[object],  # chunks as parsed JSON: see first_choice
        )

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
        await self._client.close()


def _make_http_client(
    url: str, timeout: httpx2.Timeout, guard: ResponseGuard, *, concurrent: bool = False
) -> httpx2.AsyncClient:
    """The SDK's own client, with three changes: plain http reads no CA bundle
    (cortan.providers.tls); a loopback server is reached directly, never through
    http_proxy, since cortan judges it local (no secret guard) and the prompt and the
    key must not leave; ``guard`` bounds bodies and redirects (issue 15); and its event streams are
    cleaned before the SDK parses them (:mod:`cortan.providers.lines`, issue 21)."""
    direct = is_loopback_url(url)
    verify = get_verify(url, load_system)
    if concurrent:  # the gateway: aiohttp underneath (cortan.providers.transport)
        from cortan.providers.transport import AiohttpTransport

        extra: dict[str, Any] = {"transport": AiohttpTransport(httpx2, verify=verify)}
    else:
        extra = {}
    return openai.DefaultAsyncHttpxClient(
        verify=verify,
        **extra,
        timeout=timeout,
        trust_env=not direct,
        event_hooks={
            "request": [guard.on_request],
            "response": [guard.on_response, _clean_events],  # bounded, then cleaned
        },
    )


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
    """An event stream cleaned before the SDK parses it (cortan.providers.lines)."""


class _WholeAnswer(WholeAnswer, httpx2.AsyncByteStream):
    """A whole answer handed to the SDK as events (cortan.providers.lines)."""


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
