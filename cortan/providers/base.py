"""The provider seam: what every backend implements, and the values it trades in.

A provider is deliberately small. It lists its models and streams one chat as an
async iterator of text pieces that ends with exactly one :class:`Finish`. It does
not retry, time, log, render or store anything: the model manager owns retries,
deadlines, fallback and events, so every backend behaves alike and a new one is a
page of code. Library exceptions are mapped to :mod:`cortan.core.errors` inside the
provider, because this is the boundary where they are understood.

Contract for ``stream_chat``:

* yield ``str`` pieces of the answer in order as they arrive (never empty strings),
  and :class:`Thinking` pieces where the wire carries reasoning in a field of its
  own (Ollama ``message.thinking``, OpenAI-compatible ``reasoning_content`` or
  ``reasoning``), then one ``Finish`` and stop; reasoning inline in the content
  (``<think>`` tags) is the engine's to split, not the provider's;
* yield a :class:`ToolCall` for each tool call the model made, once the call is
  complete (Ollama sends each whole in ``message.tool_calls``; OpenAI streams
  ``tool_calls`` deltas whose arguments arrive in pieces, so the provider joins them
  by index and yields the calls, in order, before the ``Finish``);
* send ``think``, ``schema`` and ``tools`` in the wire's own form, and nothing when
  None or empty;
* yield an :class:`Adjusted` before the answer for each thing the request asked that
  was not sent as asked (an option the server refused, one it has no name for): the
  engine tells the user, so no option is dropped in silence;
* raise a :class:`cortan.core.errors.ProviderError` subclass on failure, before or
  after pieces were yielded;
* when the consumer stops early (``aclose()``, cancellation), close the HTTP
  stream so the server stops generating.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from cortan.core.errors import BadResponseError, UnreachableError
from cortan.core.messages import (
    EMPTY_MAPPING,
    MAX_MODELS,
    Message,
    ModelInfo,
    PullProgress,
    ToolCall,
    Usage,
)
from cortan.core.text import format_size, one_line

__all__ = [
    "Adjusted",
    "Finish",
    "ModelRequest",
    "Piece",
    "Provider",
    "Thinking",
    "ToolCall",
    "redact",
    "sane_count",
    "sane_reason",
    "sane_usage",
    "shown_url",
    "tls_instead",
    "url_secrets",
]

E = TypeVar("E", bound=BaseException)


class ModelRequest(NamedTuple):
    """One chat as a provider sees it: the model's own name, the full message list.

    ``headers`` go out with the HTTP request as they are: the W3C ``traceparent``
    that lets the server join the caller's trace (the gateway's requests).
    """

    model: str
    messages: tuple[Message, ...]
    options: Mapping[str, Any] = EMPTY_MAPPING
    think: bool | str | None = None  # on, off, a level; None: the server's default
    schema: Mapping[str, Any] | None = None  # the answer must be JSON filling this schema
    headers: Mapping[str, str] = EMPTY_MAPPING
    # Tools the model may call: JSON-schema specs as both wires take them,
    # ``{"type": "function", "function": {"name", "description", "parameters"}}``.
    tools: tuple[Mapping[str, Any], ...] = ()


class Thinking(NamedTuple):
    """A piece of the model's reasoning, from the wire's own field for it."""

    text: str


class Adjusted(NamedTuple):
    """What the provider changed in the request to have it answered, for the user to read.

    An option the server refused (``temperature`` on a reasoning model) resent without,
    or one its API has no name for; the engine publishes it as a ``Notice``.
    """

    text: str


class Finish(NamedTuple):
    """The end of a stream: why it stopped and what it cost."""

    finish_reason: str = "stop"
    usage: Usage = Usage()
    server_timings: Mapping[str, float] = EMPTY_MAPPING


#: What ``stream_chat`` yields (see the module docstring).
Piece = str | Thinking | ToolCall | Adjusted | Finish


#: The largest context window cortan believes a server reports: 32 Mi tokens, far beyond
#: any model's. A window past it, zero or negative is a wrong reply, not a limit.
MAX_CONTEXT_LENGTH = 1 << 25


def sane_window(value: object) -> int | None:
    """A context length a server reported, or None when it cannot be one.

    The context stage sizes requests by the window, so a negative one refused every
    request and an absurd one would let any prompt through (issue 15): what is not a
    whole number of tokens between 1 and :data:`MAX_CONTEXT_LENGTH` counts as unknown.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_CONTEXT_LENGTH else None


#: The most tokens cortan believes one exchange counts: a trillion, past any model.
MAX_TOKENS = 10**12
#: The longest finish reason kept ("content_filter" is 14 characters).
MAX_REASON = 32
_NOT_IN_REASON = re.compile(r"[^A-Za-z0-9_.:-]+")


def sane_count(value: object) -> int | None:
    """A token count a server reported, or None when it cannot be one.

    Counts go to the store, the screen, ``--json`` and the context stage's estimates:
    a negative, fractional, text or boolean one, or one past :data:`MAX_TOKENS`,
    counts as not reported.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_TOKENS else None


def sane_usage(prompt: object, completion: object, thinking: object = None) -> Usage:
    """The counts a server reported, each as :func:`sane_count` takes it."""
    return Usage(sane_count(prompt), sane_count(completion), sane_count(thinking))


#: The longest duration cortan believes a server timed, in nanoseconds: about 11.6 days.
MAX_DURATION_NS = 10**15
NS = 1e-9  # seconds in a nanosecond


def sane_timings(durations: Mapping[str, object]) -> dict[str, float]:
    """Durations a server reported in nanoseconds (Ollama's ``total_duration``, …), as
    seconds; each that cannot be one is left out, as if not reported.

    A negative one, a fraction, text, a boolean or one past :data:`MAX_DURATION_NS` is
    no time a server measured; a whole number past any float (400 digits) failed the
    answer, already streamed, with an OverflowError.
    """
    return {
        name: value * NS
        for name, value in durations.items()
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DURATION_NS
    }


def sane_reason(value: object) -> str:
    """Why a server says the answer stopped, as a short plain word.

    Shown, stored and sent on by the gateway as it came, a reason of megabytes or
    with terminal escapes went everywhere the answer's ending goes: what is not a
    letter, digit, ``_``, ``.``, ``:`` or ``-`` becomes ``_``, cut at :data:`MAX_REASON`;
    nothing left (or not text) is ``unknown``.
    """
    if not isinstance(value, str):
        return "unknown"
    return _NOT_IN_REASON.sub("_", value[: MAX_REASON * 4]).strip("_")[:MAX_REASON] or "unknown"


#: Bytes of a model listing cortan reads: a thousand entries fit in a few hundred KiB.
LISTING_READ = 1 << 20


async def read_listing(chunks: AsyncIterator[bytes]) -> tuple[bytes, bool]:
    """At most :data:`LISTING_READ` bytes of a listing's body, and whether that is all.

    A listing of 100,000 models parsed whole held 60 MiB of objects at once, past
    the memory cortan promises (docs/performance.md); the rest is never read.
    """
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > LISTING_READ:
            return bytes(body[:LISTING_READ]), False
    return bytes(body), True


def listed(body: bytes, key: str, where: str, *, whole: bool) -> list[dict[str, Any]]:
    """The first :data:`MAX_MODELS` entries of a model listing's ``key`` array.

    Read from the JSON itself, not through the SDKs' models: they check (Ollama's
    refused a whole listing for one size that was not an integer) and build an object
    for every entry, where cortan keeps a thousand. What is not an object is skipped.
    A body that was cut (not ``whole``) gives the entries that arrived whole.
    """
    if not whole:
        if first := _first_entries(body, key):
            return first
        raise BadResponseError(
            f"{where} sent a model list whose first {format_size(LISTING_READ)} "
            "hold no whole entry; stopped there"
        )
    reply: object = json.loads(body)
    entries: object = reply.get(key) if isinstance(reply, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"the model list has no {key!r} array")
    return list(itertools.islice((e for e in entries if isinstance(e, dict)), MAX_MODELS))


_BETWEEN = re.compile(r"\s*,?\s*")


def _first_entries(body: bytes, key: str) -> list[dict[str, Any]]:
    """The whole entries at the start of the ``key`` array of a body cut short."""
    start = re.search(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*\[', body)
    if start is None:
        raise ValueError(f"the model list has no {key!r} array in its first bytes")
    text = body[start.end() :].decode("utf-8", "replace")
    decoder, at = json.JSONDecoder(), 0
    entries: list[dict[str, Any]] = []
    while len(entries) < MAX_MODELS:
        at = _BETWEEN.match(text, at).end()  # type: ignore[union-attr]  # it matches anywhere
        try:
            entry, at = decoder.raw_decode(text, at)
        except ValueError:  # the array's end, or where the body was cut
            break
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


#: The most tool calls one turn may ask for, on any wire; more is a server gone wrong
#: (10,000 calls in one Ollama line took 290 MB and 7.6 s through the tool loop).
MAX_TOOL_CALLS = 64


def count_calls(calls: int) -> None:
    """Refuse a turn's tool call past :data:`MAX_TOOL_CALLS` (``calls``: with this one)."""
    if calls > MAX_TOOL_CALLS:
        raise BadResponseError(
            f"the server asked for more than {MAX_TOOL_CALLS} tool calls in one turn"
        )


def json_object(value: object, what: str) -> dict[str, Any]:
    """A field of a streamed reply that must be an object (``what`` names it)."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def json_text(value: object, what: str) -> str:
    """A text field: absent or null is empty, anything but a string a reply gone wrong."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def text_or_none(value: object) -> str | None:
    """A field of a listing that must be text, or None when it is not."""
    return value if isinstance(value, str) and value else None


#: Characters of a provider's error sentence: a server's words quoted in it (an error
#: body, up to ``max_listing_bytes``; an error event, up to ``max_output_bytes``) made
#: "sentences" of megabytes on stderr, in ``--json`` and in the store.
MAX_SENTENCE = 500


#: The longest ``retry-after`` cortan believes: a day, the longest ``retry.deadline``.
MAX_RETRY_AFTER = 86400.0


def retry_after(headers: Mapping[str, str]) -> float | None:
    """A 429's ``retry-after`` in seconds, or None, which leaves the wait to the backoff
    (engine/retry.py): for an HTTP date, and for what cannot be a wait a server means
    (garbage, negative, ``nan``, ``inf``, more than a day), which would otherwise retry
    at once or pause every request of the process for ever."""
    value = headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None  # nan compares false


def tls_failure(exc: BaseException) -> str | None:
    """Why a TLS handshake failed, if that is what ``exc`` (or what it wraps) is.

    The SDKs report it as a connection error, which read "is `ollama serve`
    running?" for a server that was running all along (issue 15).
    """
    import ssl

    cause: BaseException | None = exc
    for _ in range(20):
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or "it could not be verified"
            return f"its certificate was refused ({reason})"
        if isinstance(cause, ssl.SSLError):
            if "WRONG_VERSION_NUMBER" in str(cause) or "record layer" in str(cause):
                return "it does not speak TLS there: is the URL http://, not https://?"
            return f"the TLS handshake failed ({cause.reason or type(cause).__name__})"
        cause = cause.__cause__ or cause.__context__
    return None


async def tls_instead(error: E, exc: BaseException, url: str, where: str) -> E | UnreachableError:
    """``error``, or why it happened when ``url`` is http:// and the server speaks TLS.

    A TLS server given plain HTTP closes the connection without an answer, which read
    as a server that "closed the connection before the answer was complete". Only then
    (a connection cut, no piece of answer yet) is the port asked for a TLS handshake:
    nothing is sent on it, and nothing is verified, since only the protocol matters.
    """
    if not url.startswith("http://") or not _cut(exc) or not await _speaks_tls(url):
        return error
    return UnreachableError(
        f"{where} speaks TLS, not plain HTTP: is the URL https://, not http://?"
    )


def _cut(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection closed or reset (by either httpx line)."""
    cause: BaseException | None = exc
    for _ in range(20):
        if cause is None:
            return False
        names = {type(cause).__name__}
        if names & {"RemoteProtocolError", "ReadError"} or isinstance(cause, ConnectionError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


#: Seconds the TLS handshake of :func:`tls_instead` may take.
TLS_PROBE_S = 2.0


async def _speaks_tls(url: str) -> bool:
    import asyncio
    import contextlib
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the protocol is the question, not the peer
    try:
        async with asyncio.timeout(TLS_PROBE_S):
            _, writer = await asyncio.open_connection(parts.hostname, parts.port or 80, ssl=context)
    except (OSError, TimeoutError, ValueError):  # ssl.SSLError is an OSError
        return False
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(TLS_PROBE_S):
            await writer.wait_closed()
    return True


def endpoint(client: Any, path: str) -> Any:
    """``path`` joined to an httpx ``client``'s base URL as httpx joins it, made once:
    given the relative path, httpx parses it against the base anew on every request."""
    base = client.base_url
    return base.copy_with(raw_path=base.raw_path + path.encode())


def shown_url(url: str) -> str:
    """``url`` as cortan may print it: without ``user:password@`` (issue 15)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_secrets(url: str) -> list[str]:
    """The password (and user) in ``url``, which no sentence may repeat."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    found = [parts.password, parts.username if parts.password else None]
    return [unquote(s) for s in found if s and len(s) >= 4]


def redact(error: E, secrets: Iterable[str]) -> E:
    """``error`` with every secret cortan holds (a key, a URL password) blotted out, on
    one line of at most :data:`MAX_SENTENCE` characters.

    A server may echo the request's key in its error body; the sentence built from it
    must not carry it to stderr, ``--json`` or the store (issue 15). It is cut only
    after the secrets are out, so no cut can leave the start of one behind.
    """
    text = str(error)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "[redacted]")
    text = one_line(text, MAX_SENTENCE)
    if text != str(error):
        error.args = (text,)
    return error


@runtime_checkable
class Puller(Protocol):
    """A provider whose server can download a model onto itself (Ollama's ``/api/pull``)."""

    def pull_model(self, model: str) -> AsyncIterator[PullProgress]:
        """Download ``model``, one progress step at a time; resumable by asking again."""
        ...


class Provider(Protocol):
    """A chat backend reached at one base URL.

    ``name`` is the configured provider name (``ollama``, ``work``), ``url`` the
    host this instance talks to, ``label`` a human name for messages ("Ollama").
    """

    name: str
    url: str
    label: str
    #: The request option that sizes the window a server loads (Ollama's ``num_ctx``),
    #: or None where the server always uses the model's whole window. The context
    #: stage sends it with room for the conversation and the answer.
    window_option: str | None

    async def list_models(self) -> list[ModelInfo]:
        """Every model the server offers now."""
        ...

    def stream_chat(self, request: ModelRequest) -> AsyncIterator[Piece]:
        """Stream one answer: text pieces, tool calls, then one Finish (see the module
        docstring)."""
        ...

    async def show_model(self, model: str) -> ModelInfo:
        """What the server says of one model: window, capabilities, quantisation.

        Fields it does not report stay None (an OpenAI-compatible API says nothing).
        """
        ...

    async def get_version(self) -> str | None:
        """The server's version for ``cortan doctor``, or None where it does not say."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
