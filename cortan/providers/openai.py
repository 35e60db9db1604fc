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
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    UnreachableError,
)
from cortan.core.messages import Message, ModelInfo, Usage
from cortan.providers.base import (
    Finish,
    ModelRequest,
    Thinking,
    redact,
    shown_url,
    tls_failure,
    url_secrets,
)
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
    ) -> None:
        self.name = name
        self.url = shown_url(url)  # what messages print; the client keeps the real one
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
            http_client=_make_http_client(url, timeout, guard),
        )

    def _require_key(self) -> None:
        # OpenAI itself always needs a key: say so without a round trip that can only fail.
        if not self._has_key and self.url == DEFAULT_OPENAI_URL:
            raise AuthError(f"OpenAI needs an API key: set {self._set_key}")

    async def list_models(self) -> list[ModelInfo]:
        self._require_key()
        try:
            page = await self._client.models.list()
            return [ModelInfo(name=m.id, provider=self.name) async for m in page]
        except Exception as exc:
            raise self.map_error(exc) from exc

    async def get_version(self) -> str | None:
        return None  # the API has no version call

    async def show_model(self, model: str) -> ModelInfo:
        return ModelInfo(model, self.name)  # the API says nothing; config or defaults apply

    async def stream_chat(self, request: ModelRequest) -> AsyncIterator[str | Thinking | Finish]:
        """Stream the answer of choice 0 only.

        cortan asks for one choice; a server that sends more (``n`` set by a proxy, or
        a hostile one) interleaves chunks of choices 0, 1, … in one stream, and mixing
        them would make one answer of two (issue 15). Chunks of any other index are
        skipped, their text and their finish_reason alike.
        """
        finish_reason: str | None = None
        usage = Usage()
        self._require_key()
        try:
            # Any: the SDK's overloads cannot see that **options never holds `stream`.
            create: Any = self._client.chat.completions.create
            stream = await create(
                model=request.model,
                messages=[_wire_message(m) for m in request.messages],
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=dict(request.headers) or None,
                **self._options(request),
            )
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in _first_choice(chunk):
                        if reasoning := _reasoning(choice.delta):
                            yield Thinking(reasoning)
                        if choice.delta.content:
                            yield choice.delta.content
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
        except ProviderError:
            raise
        except Exception as exc:
            raise self.map_error(exc, request.model) from exc
        if finish_reason is None:  # the stream ended cleanly, but mid-answer (or empty)
            raise ServerError(
                f"{self.label} at {self.url} ended the answer without finishing it "
                "(no finish_reason): it may be cut short"
            )
        yield Finish(finish_reason=finish_reason, usage=usage)

    @staticmethod
    def _options(request: ModelRequest) -> dict[str, Any]:
        """cortan's options in the body's own names; the extras servers take in extra_body."""
        body = {k: v for k, v in request.options.items() if k in BODY_OPTIONS}
        extra = {k: v for k, v in request.options.items() if k in EXTRA_OPTIONS}
        if isinstance(request.think, str):
            body["reasoning_effort"] = request.think  # OpenAI, Ollama's /v1, vLLM
        elif request.think is not None:
            # llama.cpp's server and vLLM switch a model's thinking in its chat template.
            extra["chat_template_kwargs"] = {"enable_thinking": request.think}
        if request.schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": dict(request.schema)},
            }
        if extra:
            body["extra_body"] = extra
        return body

    def map_error(self, exc: BaseException, model: str | None = None) -> ProviderError:
        """Turn a library exception into the sentence a user needs, secrets blotted out."""
        return redact(self._map_error(exc, model), self._secrets)

    def _map_error(self, exc: BaseException, model: str | None) -> ProviderError:
        where = f"{self.label} at {self.url}"
        if (refused := carried(exc)) is not None:  # a bound or a redirect (responses.py)
            return refused
        if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
            return ProviderTimeoutError(f"{where} did not answer in time")
        if _cut_mid_stream(exc):
            return ServerError(f"{where} closed the connection before the answer was complete")
        if (tls := tls_failure(exc)) is not None:
            return UnreachableError(f"TLS with {where} failed: {tls}")
        if isinstance(exc, openai.APIConnectionError | httpx2.ConnectError):
            return UnreachableError(f"cannot reach {where}: check the base URL and your network")
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc, model)
        if isinstance(exc, openai.APIError):
            return ServerError(f"{where} reported an error mid-answer: {_message(exc)}")
        if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
            return ServerError(f"{where} closed the connection before the answer was complete")
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
        if status == 429:
            return RateLimitedError(f"{where} is rate limiting: {text}", _retry_after(exc))
        if status >= 500:
            return ServerError(f"{where} failed with HTTP {status}: {text}")
        return BadRequestError(f"{where} rejected the request (HTTP {status}): {text}")

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


#: Options the OpenAI body names as cortan does; the others go in ``extra_body``.
BODY_OPTIONS = frozenset(
    {"temperature", "top_p", "seed", "stop", "max_tokens", "presence_penalty", "frequency_penalty"}
)
EXTRA_OPTIONS = frozenset({"top_k", "min_p", "repeat_penalty"})  # llama.cpp, vLLM


def _wire_message(message: Message) -> dict[str, Any]:
    """One message in the wire's form: images as data-URL content parts before the text."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image.data_url()}} for image in message.images
    ]
    parts.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": parts}


def _first_choice(chunk: Any) -> list[Any]:
    """The chunk's part of choice 0: another index is another candidate answer (``n`` > 1)."""
    if not isinstance(chunk.choices, list):  # a wrong shape is a failure, not silence
        raise TypeError(f"choices is {type(chunk.choices).__name__}, not a list")
    return [choice for choice in chunk.choices if choice.index == 0]


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
    return Usage(usage.prompt_tokens, usage.completion_tokens, thinking)


def with_v1(url: str) -> str:
    """``url`` ending in /v1: another version (``/v2``) is replaced, not extended (issue 21)."""
    base = url.rstrip("/")
    return re.sub(r"/v\d+$", "", base) + "/v1"


def _make_http_client(
    url: str, timeout: httpx2.Timeout, guard: ResponseGuard
) -> httpx2.AsyncClient:
    """The SDK's own client, with three changes: plain http reads no CA bundle
    (cortan.providers.tls); a loopback server is reached directly, never through
    http_proxy, since cortan judges it local (no secret guard) and the prompt and the
    key must not leave; and ``guard`` bounds bodies and redirects (issue 15)."""
    direct = is_loopback_url(url)
    return openai.DefaultAsyncHttpxClient(
        verify=get_verify(url, load_system),
        timeout=timeout,
        trust_env=not direct,
        event_hooks={"request": [guard.on_request], "response": [guard.on_response]},
    )


def _cut_mid_stream(exc: BaseException) -> bool:
    """The SDK reports a stream cut short as a connection error; its cause says which."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx2.RemoteProtocolError | httpx2.ReadError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def make_provider(
    name: str,
    url: str,
    config: ProviderConfig,
    timeouts: Timeouts,
    limits: BodyLimits | None = None,
) -> OpenAIProvider:
    """Factory registered in :data:`cortan.providers.KINDS`."""
    return OpenAIProvider(name, url, get_api_key(name, config), timeouts, limits)
