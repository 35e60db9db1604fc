"""OpenAI and OpenAI-compatible servers (vLLM, LM Studio, llama.cpp) via ``openai.AsyncOpenAI``.

The SDK's own retries are off (``max_retries=0``): the model manager owns
retries, so an answer is never stitched from two attempts. Usage comes from the
final chunk that ``stream_options.include_usage`` asks for; servers that ignore
the option simply report no usage.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2
import openai

from cortan.config.keys import get_api_key
from cortan.config.settings import DEFAULT_OPENAI_URL, is_loopback_url
from cortan.core.errors import (
    AuthError,
    BadRequestError,
    BadResponseError,
    ContextOverflowError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    UnreachableError,
)
from cortan.core.messages import Message, ModelInfo, Usage
from cortan.providers.base import (
    Adjusted,
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
    sane_usage,
    shown_url,
    text_or_none,
    tls_failure,
    tls_instead,
    url_secrets,
)
from cortan.providers.fields import BODY_OPTIONS, EXTRA_OPTIONS, Fields
from cortan.providers.lines import EventLines, WholeAnswer
from cortan.providers.responses import BodyLimits, BoundedBody, ResponseGuard, carried
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
        self._key_variable = variable
        self._set_key = f"{variable} or run `cortan keys set {name}`"
        self._has_key = api_key is not None
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
        calls = _CallParts()
        begun = False
        self._require_key()
        body, notes = self._fields.shape(request.model, self._options(request), request.options)
        try:
            stream = await self._open(request, body, notes)
            for note in notes:  # before the answer: the engine tells the user
                yield Adjusted(f"{self.label} at {self.url} {note}")
            async with stream:
                async for chunk in stream:
                    begun = True
                    usage = usage if chunk.usage is None else _usage(chunk.usage)
                    for choice in _first_choice(chunk):
                        for item in _delta_items(choice.delta, calls):
                            yield item
                        if choice.finish_reason:
                            finish_reason = sane_reason(choice.finish_reason)
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
                said = self._fields.refused(request.model, body, tried, exc.body, _message(exc))
                if said is None:
                    raise
                if said:
                    notes.append(said)

    async def _create(self, request: ModelRequest, body: dict[str, Any]) -> Any:
        # Any: the SDK's overloads cannot see that **body never holds `stream`.
        create: Any = self._client.chat.completions.create
        return await create(
            model=request.model,
            messages=[_wire_message(m) for m in request.messages],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=dict(request.headers) or None,
            **body,
        )

    @staticmethod
    def _options(request: ModelRequest) -> dict[str, Any]:
        """cortan's options in the body's own names; the extras servers take in extra_body.

        An option this API has no name for (``num_ctx``) is left out, and
        :meth:`Fields.shape` says so.
        """
        body = {k: v for k, v in request.options.items() if k in BODY_OPTIONS}
        extra = {k: v for k, v in request.options.items() if k in EXTRA_OPTIONS}
        if isinstance(request.think, str):
            body["reasoning_effort"] = request.think  # OpenAI, Ollama's /v1, vLLM
        elif request.think is not None:
            # llama.cpp's server and vLLM switch a model's thinking in its chat template.
            extra["chat_template_kwargs"] = {"enable_thinking": request.think}
        if request.tools:
            body["tools"] = [dict(tool) for tool in request.tools]
        if request.schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": dict(request.schema)},
            }
        if extra:
            body["extra_body"] = extra
        return body

    async def _failed(self, exc: BaseException, model: str, *, begun: bool) -> ProviderError:
        """Why a chat failed; before its first piece, a cut connection may mean TLS."""
        error = self.map_error(exc, model)
        if begun:
            return error
        return await tls_instead(error, exc, self.url, f"{self.label} at {self.url}")

    def map_error(self, exc: BaseException, model: str | None = None) -> ProviderError:
        """Turn a library exception into the sentence a user needs, secrets blotted out."""
        return redact(self._map_error(exc, model), self._secrets)

    def _map_error(self, exc: BaseException, model: str | None) -> ProviderError:
        where = f"{self.label} at {self.url}"
        if (refused := carried(exc)) is not None:  # a bound or a redirect (responses.py)
            return refused
        if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
            return ProviderTimeoutError(f"{where} did not answer in time")
        if _cut_mid_stream(exc) or isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
            return ServerError(f"{where} closed the connection before the answer was complete")
        if (tls := tls_failure(exc)) is not None:
            return UnreachableError(f"TLS with {where} failed: {tls}")
        if isinstance(exc, openai.APIConnectionError | httpx2.ConnectError):
            return UnreachableError(f"cannot reach {where}: check the base URL and your network")
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc, model)
        if isinstance(exc, openai.APIError):
            if overflow := self._map_overflow(exc):
                return overflow
            return ServerError(f"{where} reported an error mid-answer: {_message(exc)}")
        if isinstance(exc, json.JSONDecodeError | ValueError | httpx2.DecodingError):
            return BadResponseError(f"{where} sent a reply cortan cannot parse")
        return BadResponseError(f"{where} failed unexpectedly: {type(exc).__name__}")

    def _map_status(self, exc: openai.APIStatusError, model: str | None) -> ProviderError:
        where, status, text = f"{self.label} at {self.url}", exc.status_code, _message(exc)
        if status == 401 or status == 403:
            if not self._has_key:
                return AuthError(f"{where} needs an API key: set {self._set_key}")
            return AuthError(f"{where} rejected the API key: check {self._key_variable}")
        if status == 404:
            return self._map_not_found(exc, model)
        if overflow := self._map_overflow(exc):  # 400 mostly; older llama.cpp says 500
            return overflow
        if status == 429:
            return RateLimitedError(
                f"{where} is rate limiting: {text}", retry_after(exc.response.headers)
            )
        if status >= 500:
            return ServerError(f"{where} failed with HTTP {status}: {text}")
        return BadRequestError(f"{where} rejected the request (HTTP {status}): {text}")

    def _map_overflow(self, exc: openai.APIError) -> ContextOverflowError | None:
        """The server's "the prompt is longer than the window", in any of its known forms."""
        body = exc.body if isinstance(exc.body, dict) else {}
        text = _message(exc)
        codes = {str(body.get("type")), str(body.get("code"))}  # any JSON may come here
        if not codes & OVERFLOW_CODES and OVERFLOW_TEXT.search(text) is None:
            return None
        window = _int(body.get("n_ctx")) or _number(OVERFLOW_WINDOW, text)
        prompt = _int(body.get("n_prompt_tokens")) or _number(OVERFLOW_PROMPT, text)
        counted = f"{prompt} prompt tokens" if prompt else "the prompt"
        size = f"its {window}-token context window" if window else "its context window"
        return ContextOverflowError(
            f"{self.label} at {self.url} refused {counted} as longer than {size}",
            window=window,
            prompt_tokens=prompt,
        )

    def _map_not_found(self, exc: openai.APIStatusError, model: str | None) -> ProviderError:
        body = exc.body if isinstance(exc.body, dict) else {}
        if body.get("code") == "model_not_found" or "model" in _message(exc).lower():
            return ModelNotFoundError(
                f"model {model!r} does not exist on {self.label} at {self.url}: "
                f"`cortan models` lists the ones it has"
            )
        if not urlsplit(self.url).path.rstrip("/").endswith("/v1"):
            return BadRequestError(
                f"{self.url} answered 404 for the chat endpoint: "
                f"does the base URL need to end in /v1 (e.g. {with_v1(self.url)})?"
            )
        return BadRequestError(f"{self.url} has no chat completions endpoint (HTTP 404)")

    async def aclose(self) -> None:
        await self._client.close()


def _delta_items(delta: Any, calls: _CallParts) -> list[str | Thinking]:
    """What one delta brings: reasoning, text; its tool-call pieces go to ``calls``."""
    items: list[str | Thinking] = []
    if reasoning := _reasoning(delta):
        items.append(Thinking(reasoning))
    if delta.content:
        items.append(delta.content)
    if delta.tool_calls:
        calls.add(delta.tool_calls)
    return items


class _CallParts:
    """Streamed ``tool_calls`` deltas joined into whole calls, by their ``index``.

    The first delta of a call carries its id and name, the later ones pieces of its
    arguments' JSON text; several calls of one turn interleave by index. Bounded: a
    server cannot make cortan hold more than ``MAX_CALLS`` calls of one turn.
    """

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, *argument pieces]

    def add(self, deltas: Any) -> None:
        for delta in deltas:
            index = delta.index if isinstance(delta.index, int) else len(self._calls)
            parts = self._calls.get(index)
            if parts is None:
                if len(self._calls) >= MAX_CALLS:
                    raise BadResponseError(
                        f"the server asked for more than {MAX_CALLS} tool calls in one turn"
                    )
                parts = self._calls[index] = ["", ""]
            if delta.id:
                parts[0] = delta.id
            function = delta.function
            if function is not None:
                if function.name:
                    parts[1] += function.name
                if function.arguments:
                    parts.append(function.arguments)

    def complete(self) -> list[ToolCall]:
        return [
            ToolCall(parts[0] or f"call_{index}", parts[1], "".join(parts[2:]))
            for index, parts in sorted(self._calls.items())
        ]


#: The most tool calls one turn may ask for; more is a server gone wrong.
MAX_CALLS = 64


def _wire_message(message: Message) -> dict[str, Any]:
    """One message in the wire's form: images as data-URL content parts before the text;
    an assistant's tool calls; a tool's result naming the call it answers."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image.data_url()}} for image in message.images
    ]
    parts.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": parts}


def _first_choice(chunk: Any) -> list[Any]:
    """The chunk's part of choice 0: another index is another candidate answer (``n`` > 1)."""
    choices = chunk.choices
    if not isinstance(choices, list):  # the SDK does not check: "choices": "x" iterates
        raise ValueError("choices is not a list")
    return [choice for choice in choices if getattr(choice, "index", None) == 0]


def _reasoning(delta: Any) -> str | None:
    """Reasoning in a delta: ``reasoning_content`` (llama.cpp, vLLM, DeepSeek) or ``reasoning``.

    Neither is in the SDK's model, so they arrive as extra fields.
    """
    extra = getattr(delta, "model_extra", None) or {}
    text = extra.get("reasoning_content") or extra.get("reasoning")
    return text if isinstance(text, str) and text else None


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "completion_tokens_details", None)
    thinking = getattr(details, "reasoning_tokens", None) if details is not None else None
    prompt = getattr(usage, "prompt_tokens", None)  # the SDK does not check: any JSON comes
    return sane_usage(prompt, getattr(usage, "completion_tokens", None), thinking)


def with_v1(url: str) -> str:
    """``url`` ending in /v1: another version (``/v2``) is replaced, not extended (issue 21)."""
    base = url.rstrip("/")
    return re.sub(r"/v\d+$", "", base) + "/v1"


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


def _cut_mid_stream(exc: BaseException) -> bool:
    """The SDK reports a stream cut short as a connection error; its cause says which."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx2.RemoteProtocolError | httpx2.ReadError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


#: Error ``type``/``code`` values that mean the prompt does not fit: llama.cpp, OpenAI.
OVERFLOW_CODES = frozenset({"exceed_context_size_error", "context_length_exceeded"})
#: The sentences that say so where no code does: llama.cpp (its older builds' "input
#: is too large" too), OpenAI and vLLM ("maximum context length is N tokens").
OVERFLOW_TEXT = re.compile(
    r"exceeds? the available context size|input is too large to process"
    r"|maximum context length is \d+|context length exceeded|prompt is too long",
    re.IGNORECASE,
)
OVERFLOW_WINDOW = re.compile(
    r"maximum context length is (\d+)|available context size \((\d+) tokens\)", re.IGNORECASE
)
OVERFLOW_PROMPT = re.compile(
    r"request \((\d+) tokens\)|messages resulted in (\d+) tokens|(\d+) in the messages",
    re.IGNORECASE,
)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _number(pattern: re.Pattern[str], text: str) -> int | None:
    found = pattern.search(text)
    digits = next((g for g in found.groups() if g), None) if found else None
    return int(digits) if digits and len(digits) < 10 else None


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


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
