"""How an OpenAI-compatible server's failures read: its statuses and errors as cortan's.

Layer: providers (beside ``openai.py``, whose ``map_error`` asks this module: the one
place where what went wrong on the wire, and httpx2's exceptions, become
:mod:`cortan.core.errors`). Each becomes the sentence a user needs, naming the server
and what to do: set or check a key, end the base URL in /v1, pick a listed model. A
prompt longer than the window is recognised in each form the servers word it
(llama.cpp, OpenAI, vLLM), with the window and the prompt's size when they are given.

The provider speaks the wire without the ``openai`` SDK; these classes stand for the
SDK's exceptions and are read as it read them, so the sentences stayed the same:
:class:`StatusError` for a reply that is not 2xx, :class:`StreamError` for an
``{"error": …}`` event after the stream began, :class:`Unreached` for a transport
failure (httpx2's, or TLS's) while sending or reading, which the SDK's
``APIConnectionError`` wrapped.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx2

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
from cortan.providers.base import retry_after, tls_failure
from cortan.providers.responses import carried

#: What the SDK wrapped as a connection error when sending or reading raised it.
TRANSPORT_ERRORS = (httpx2.RequestError, ssl.SSLError)


class APIFailure(Exception):
    """The server's own error: ``body`` is its JSON's ``error`` (or the whole reply),
    ``message`` the SDK's wording of it, kept for an error without a message."""

    def __init__(self, message: str, body: object) -> None:
        super().__init__(message)
        self.message, self.body = message, body


class StatusError(APIFailure):
    """A reply that is not 2xx (``status_code``; ``headers``: a 429's ``retry-after``)."""

    def __init__(
        self, message: str, body: object, status_code: int, headers: Mapping[str, str]
    ) -> None:
        super().__init__(message, body)
        self.status_code, self.headers = status_code, headers


class StreamError(APIFailure):
    """An ``{"error": …}`` event in a stream that had begun."""


class Unreached(Exception):
    """The request or its stream failed in transport; the cause (``from``) says how."""


def status_error(status: int, text: str, headers: Mapping[str, str]) -> StatusError:
    """An error reply's body (``text``) as :class:`StatusError`: its JSON's ``error``
    when it has one, else the JSON or the text, as the SDK read it."""
    message = f"Error code: {status}"
    text = text.strip()
    body: Any = text
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        pass
    else:
        error = body.get("error", body) if isinstance(body, dict) else None
        said = error.get("message") if isinstance(error, dict) else None
        if isinstance(said, str) and said:
            message += f" - {said}"
    data = body.get("error", body) if isinstance(body, dict) else body
    return StatusError(message, data, status, headers)


def stream_error(data: object) -> StreamError | None:
    """An event's JSON as :class:`StreamError` when it carries an ``error``, else None."""
    if not isinstance(data, dict) or not data.get("error"):
        return None
    error = data["error"]
    message = error.get("message") if isinstance(error, dict) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return StreamError(message, error)


class OpenAIErrors:
    """The sentences for one endpoint's failures (``label`` at ``url``).

    ``has_key``: whether a key was given, so a 401 says to set one or to check it;
    ``key_variable`` names where it comes from and ``set_key`` how to give one.
    """

    def __init__(
        self, label: str, url: str, *, has_key: bool, key_variable: str, set_key: str
    ) -> None:
        self._label, self._url = label, url
        self._has_key, self._key_variable, self._set_key = has_key, key_variable, set_key

    def explain(self, exc: BaseException, model: str | None = None) -> ProviderError:
        """The sentence for ``exc``; secrets are the provider's to blot out."""
        where = f"{self._label} at {self._url}"
        if (refused := carried(exc)) is not None:  # a bound or a redirect (responses.py)
            return refused
        if isinstance(exc, httpx2.TimeoutException):
            return ProviderTimeoutError(f"{where} did not answer in time")
        if _cut_mid_stream(exc) or isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
            return ServerError(f"{where} closed the connection before the answer was complete")
        if (tls := tls_failure(exc)) is not None:
            return UnreachableError(f"TLS with {where} failed: {tls}")
        if isinstance(exc, Unreached | httpx2.ConnectError):
            return UnreachableError(f"cannot reach {where}: check the base URL and your network")
        if isinstance(exc, StatusError):
            return self._map_status(exc, model)
        if isinstance(exc, APIFailure):
            if overflow := self._map_overflow(exc):
                return overflow
            return ServerError(f"{where} reported an error mid-answer: {error_text(exc)}")
        if isinstance(exc, json.JSONDecodeError | ValueError | httpx2.DecodingError):
            return BadResponseError(f"{where} sent a reply cortan cannot parse")
        return BadResponseError(f"{where} failed unexpectedly: {type(exc).__name__}")

    def _map_status(self, exc: StatusError, model: str | None) -> ProviderError:
        where, status, text = f"{self._label} at {self._url}", exc.status_code, error_text(exc)
        if status == 401 or status == 403:
            if not self._has_key:
                return AuthError(f"{where} needs an API key: set {self._set_key}")
            return AuthError(f"{where} rejected the API key: check {self._key_variable}")
        if status == 404:
            return self._map_not_found(exc, model)
        if overflow := self._map_overflow(exc):  # 400 mostly; older llama.cpp says 500
            return overflow
        if status == 429:
            return RateLimitedError(f"{where} is rate limiting: {text}", retry_after(exc.headers))
        if status >= 500:
            return ServerError(f"{where} failed with HTTP {status}: {text}")
        return BadRequestError(f"{where} rejected the request (HTTP {status}): {text}")

    def _map_overflow(self, exc: APIFailure) -> ContextOverflowError | None:
        """The server's "the prompt is longer than the window", in any of its known forms."""
        body = exc.body if isinstance(exc.body, dict) else {}
        text = error_text(exc)
        codes = {str(body.get("type")), str(body.get("code"))}  # any JSON may come here
        if not codes & OVERFLOW_CODES and OVERFLOW_TEXT.search(text) is None:
            return None
        window = _int(body.get("n_ctx")) or _number(OVERFLOW_WINDOW, text)
        prompt = _int(body.get("n_prompt_tokens")) or _number(OVERFLOW_PROMPT, text)
        counted = f"{prompt} prompt tokens" if prompt else "the prompt"
        size = f"its {window}-token context window" if window else "its context window"
        return ContextOverflowError(
            f"{self._label} at {self._url} refused {counted} as longer than {size}",
            window=window,
            prompt_tokens=prompt,
        )

    def _map_not_found(self, exc: StatusError, model: str | None) -> ProviderError:
        body = exc.body if isinstance(exc.body, dict) else {}
        if body.get("code") == "model_not_found" or "model" in error_text(exc).lower():
            return ModelNotFoundError(
                f"model {model!r} does not exist on {self._label} at {self._url}: "
                f"`cortan models` lists the ones it has"
            )
        if not urlsplit(self._url).path.rstrip("/").endswith("/v1"):
            return BadRequestError(
                f"{self._url} answered 404 for the chat endpoint: "
                f"does the base URL need to end in /v1 (e.g. {with_v1(self._url)})?"
            )
        return BadRequestError(f"{self._url} has no chat completions endpoint (HTTP 404)")


def with_v1(url: str) -> str:
    """``url`` ending in /v1: another version (``/v2``) is replaced, not extended (issue 21)."""
    base = url.rstrip("/")
    return re.sub(r"/v\d+$", "", base) + "/v1"


def _cut_mid_stream(exc: BaseException) -> bool:
    """A stream cut short is reported as a transport failure; its cause says which."""
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


def error_text(exc: APIFailure) -> str:
    """The server's own words: the body's ``message`` when it is text, else the SDK's wording."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message
