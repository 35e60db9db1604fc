"""What a provider accepts back from a server: bounded bodies, from the origin it was given.

Layer: providers. A server is outside text (issue 15). Two of its tricks cost more
than a bad sentence, and both are handled here, in the HTTP client's event hooks,
so that every request of a provider (listing, details, chat, errors) is covered
whichever SDK makes it:

* **Decompression bombs.** A 1 MiB gzip body inflates to 1 GiB, and the client
  libraries inflate a chunk in one call and join a body whole. The body is
  inflated here instead, 64 KiB at a time, and counted: a streamed answer may
  inflate to ``max_response_bytes``, one line of it (one piece) to
  ``max_output_bytes``, a progress stream (Ollama's ``/api/pull``) any length in
  lines of ``max_listing_bytes``, any other body ``max_listing_bytes``. Past a bound
  the response fails with one sentence. Only ``gzip`` and ``deflate`` are asked for and
  read; another encoding is refused rather than passed on undecoded.
* **Redirects to another origin.** The SDKs follow redirects, and a 307 or 308
  sends the body again: a prompt would go to whatever host the server names. A
  redirect is followed only to the same origin (or from http to https on the same
  host); any other is refused, naming the target's origin.

The bounded stream must subclass each library's own ``AsyncByteStream`` (httpx for
Ollama's provider, httpx2 under OpenAI's SDK), so each provider makes its class from
:class:`BoundedBody` and the library's base; nothing here imports either library.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from cortan.core.errors import BadResponseError
from cortan.core.text import format_size, make_visible

#: Inflated bytes handed on at a time: what one decompression step may take in memory.
CHUNK = 64 << 10
#: The encodings cortan asks for and can inflate with bounds.
ACCEPT_ENCODING = "gzip, deflate"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BodyLimits(NamedTuple):
    """Bounds on the decoded bytes of one response (settings ``max_*_bytes``)."""

    answer: int = 64 << 20  # a streamed answer's whole body
    piece: int = 4 << 20  # one line of a streamed answer: one piece
    listing: int = 8 << 20  # any other body: a model list, a model's details, an error


class _Inflater(Protocol):
    def __call__(self, data: bytes) -> Iterator[bytes]: ...


def _inflater(encoding: str) -> _Inflater | None:
    """A bounded decoder for one content coding, or None for one cortan does not read."""
    if encoding in ("gzip", "x-gzip"):
        return _ZlibInflater(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _ZlibInflater(zlib.MAX_WBITS, raw_fallback=True)
    return None


class _ZlibInflater:
    """Inflate in pieces of at most :data:`CHUNK`, however much one input expands to."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._decompressor = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback  # "deflate" is raw deflate from some servers
        self._started = False
        self._head = b""  # zlib's header is two bytes: which kind it is waits for both

    def __call__(self, data: bytes) -> Iterator[bytes]:
        if self._raw_fallback and not self._started:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
        if not data:
            return
        try:
            out = self._decompressor.decompress(data, CHUNK)
        except zlib.error:
            if not self._raw_fallback or self._started:
                raise
            self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._decompressor.decompress(data, CHUNK)
        self._started = True
        while out:
            yield out
            out = self._decompressor.decompress(self._decompressor.unconsumed_tail, CHUNK)


def _through(stages: Sequence[_Inflater], data: bytes) -> Iterator[bytes]:
    """``data`` through every decoding stage in turn, piece by bounded piece."""
    if not stages:
        if data:
            yield data
        return
    for piece in stages[0](data):
        yield from _through(stages[1:], piece)


class BoundedBody:
    """A response body, inflated here and counted (see the module docstring).

    Mixed into the library's ``AsyncByteStream`` by each provider; ``raw`` is the
    transport's stream of bytes as they came over the wire.
    """

    def __init__(
        self,
        raw: AsyncIterable[bytes],
        encodings: Sequence[str],
        *,
        limit: int,
        line_limit: int,
        too_large: Callable[[str], BadResponseError],
    ) -> None:
        self._raw = raw
        stages = [_inflater(e) for e in reversed(encodings)]  # the last applied comes off first
        self._stages = [s for s in stages if s is not None]
        self._limit, self._line_limit, self._too_large = limit, line_limit, too_large

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = line = 0
        async for data in self._raw:
            for piece in _through(self._stages, data):
                total += len(piece)
                end = max(piece.rfind(b"\n"), piece.rfind(b"\r"))
                line = line + len(piece) if end < 0 else len(piece) - end - 1
                if total > self._limit:
                    raise self._too_large("total")
                if line > self._line_limit:
                    raise self._too_large("line")
                yield piece

    async def aclose(self) -> None:
        raw, self._raw = self._raw, _CLOSED
        close = getattr(raw, "aclose", None)
        if close is not None:
            await close()


class _Closed:
    """A closed body's bytes: none.

    A closed body lets go of the transport's stream: httpx's stream and its response
    refer to each other, so each response was left to the cyclic collector. In the
    gateway that was some thirty objects a request, and the collector's full passes
    over them held every request in flight for 5-35 ms (the p99 at 8 in flight).
    """

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


_CLOSED = _Closed()


def origin(url: str) -> tuple[str, str, int | None]:
    """A URL's origin: scheme, host and port (the scheme's default filled in)."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        port = parts.port
    except ValueError:  # not a URL at all: an origin nothing else has
        return "", "?", None
    return scheme, host, port or _DEFAULT_PORTS.get(scheme)


def shown_origin(url: str) -> str:
    """The origin of ``url`` as a sentence may show it: no user, no path, nothing invisible."""
    scheme, host, port = origin(url)
    shown_host = f"[{host}]" if ":" in host else host
    default = _DEFAULT_PORTS.get(scheme)
    return make_visible(f"{scheme}://{shown_host}" + (f":{port}" if port != default else ""))


def may_follow(base: str, target: str) -> bool:
    """Whether a request for ``base`` may be sent on to ``target``: the same origin, or
    the same host moved from http to https (the prompt stays with the same server)."""
    here, there = origin(base), origin(target)
    if here == there:
        return True
    return here[0] == "http" and there[0] == "https" and here[1] == there[1]


#: The bound of a progress stream's whole body: none a server can reach. Each line is
#: read and let go, so memory stays one line's; the time is the user's (Ctrl-C).
UNBOUNDED = 1 << 62


class ResponseGuard:
    """The event hooks of one provider's HTTP client (see the module docstring).

    ``where`` names the server in sentences ("Ollama at http://…"); ``base`` is the
    URL the provider was given; ``answer_paths`` end the paths of streamed answers;
    ``progress_paths`` those of progress streams, which last as long as the work
    they report (Ollama sends a line of a pull's progress every 60 ms: 8 MiB in about
    an hour, which failed the pull of any large model on a slow link);
    ``stream_type`` is the provider's :class:`BoundedBody` subclass of its library's
    stream class.
    """

    def __init__(
        self,
        where: str,
        base: str,
        limits: BodyLimits,
        answer_paths: Sequence[str],
        stream_type: Callable[..., Any],
        progress_paths: Sequence[str] = (),
    ) -> None:
        self._where, self._base, self._limits = where, base, limits
        self._answer_paths = tuple(answer_paths)
        self._progress_paths = tuple(progress_paths)
        self._stream_type = stream_type

    async def on_request(self, request: Any) -> None:
        """Refuse a redirect to another origin; ask only for encodings read with bounds."""
        target = str(request.url)
        if not may_follow(self._base, target):
            raise BadResponseError(
                f"{self._where} redirected the request to another origin, "
                f"{shown_origin(target)}; cortan does not follow it there, so nothing was "
                "sent to it (set the provider's URL to that server if you trust it)"
            )
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING

    async def on_response(self, response: Any) -> None:
        """Swap the body for a bounded, inflated one before anyone reads it."""
        encodings = [
            e.strip().lower()
            for e in response.headers.get_list("content-encoding", split_commas=True)
        ]
        encodings = [e for e in encodings if e and e != "identity"]
        unknown = [e for e in encodings if _inflater(e) is None]
        if unknown:
            raise BadResponseError(
                f"{self._where} sent its reply in an encoding cortan does not read "
                f"({make_visible(unknown[0][:40])!r}), though it asked for {ACCEPT_ENCODING} only"
            )
        path = urlsplit(str(response.request.url)).path.rstrip("/")
        answer = path.endswith(self._answer_paths)
        limit = self._limits.answer if answer else self._limits.listing
        line_limit = self._limits.piece if answer else limit
        if path.endswith(self._progress_paths) and response.is_success:
            limit = UNBOUNDED  # its lines stay bounded: the listing's bound each
        if "content-encoding" in response.headers:
            del response.headers["content-encoding"]
        response.stream = self._stream_type(
            response.stream,
            encodings,
            limit=limit,
            line_limit=line_limit,
            too_large=lambda what: self._too_large(what, answer, limit, line_limit),
        )

    def _too_large(self, what: str, answer: bool, limit: int, line_limit: int) -> BadResponseError:
        if what == "line" and answer:
            return BadResponseError(
                f"{self._where} sent one piece of answer larger than {format_size(line_limit)}; "
                "stopped there (setting max_output_bytes)"
            )
        setting = "max_response_bytes" if answer else "max_listing_bytes"
        body = "an answer" if answer else "a reply"
        if what == "line":  # of a progress stream, whose whole has no bound
            body, limit = "a line", line_limit
        return BadResponseError(
            f"{self._where} sent {body} larger than {format_size(limit)} once decompressed; "
            f"stopped there (setting {setting})"
        )


def carried(exc: BaseException) -> BadResponseError | None:
    """The guard's own error inside whatever an SDK wrapped it in, if it is there."""
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 20:
        if isinstance(cause, BadResponseError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None
