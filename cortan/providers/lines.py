"""Streamed bodies read in whole lines, cleaned on the way.

Layer: providers. :class:`WholeLines` holds a line until it is whole (the SDKs read
whole lines anyway) and hands each block of whole lines to ``clean``: every byte is
copied a bounded number of times, and a long line is joined once, not again with
each chunk that extends it (a 4 MiB line in small chunks was quadratic). Ollama's
lines are read with it (:mod:`cortan.providers.ollama_wire`); :class:`EventLines`
cleans an OpenAI-compatible event stream before the OpenAI SDK reads it.

The OpenAI SDK reads server-sent events a line at a time in
Python: a few microseconds a line, whatever the line holds. A server (or a proxy)
that floods the stream with comments (``: ping``) or blank lines, which carry
nothing, kept cortan busy for a minute within ``max_response_bytes``. Here whole
lines are cleaned a block at a time, at the speed of ``bytes`` methods, before the
SDK sees them:

* comment lines are dropped, and each run of blank lines is one blank line (a second
  blank line only repeats an event's end, or, once a server has sent an ``id:``,
  makes an empty event the SDK cannot parse);
* llama.cpp's ``error: {...}`` lines become ``data:`` events (below);
* bytes that are not UTF-8 become U+FFFD, as they do in Ollama's lines,
  instead of failing the whole answer as a reply that "cannot parse".
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from cortan.core.text import shorten

#: Characters kept of each text field of an error a server writes into the stream.
MAX_ERROR_TEXT = 2000
#: Fields kept of such an error: the message, its type and code, llama.cpp's counts.
MAX_ERROR_FIELDS = 16

_COMMENT = re.compile(rb"\n:[^\n]*")
_BLANKS = re.compile(rb"\n{3,}")  # a line's end and two blank lines or more


class WholeLines:
    """A body (``stream``, async bytes) handed on a block of whole lines at a time.

    A mixin: the provider makes it its library's ``AsyncByteStream`` as well.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        held = bytearray()
        async for chunk in self._stream:
            cut = _line_end(chunk)
            if not cut:
                held += chunk
                continue
            block = bytes(held) + chunk[:cut] if held else chunk[:cut]
            held = bytearray(chunk[cut:])
            if cleaned := self.clean(block):
                yield cleaned
        if held and (cleaned := self.clean(bytes(held))):
            yield cleaned

    def clean(self, block: bytes) -> bytes:
        """``block``, whole lines (the last may lack its end), as the SDK gets it."""
        return block

    async def aclose(self) -> None:
        await self._stream.aclose()


class EventLines(WholeLines):
    """An event stream without comments, extra blank lines or bad UTF-8 (above)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._at_blank = True  # the stream so far ends with a blank line (or is empty)

    def clean(self, block: bytes) -> bytes:
        """``block`` (whole lines) without comments, extra blank lines or bad UTF-8.

        Line ends become LF first (CR, LF and CRLF mean the same to the SDK), so that
        each step is one pass of a simple pattern.
        """
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if block.startswith(b":") or b"\n:" in block:
            # Each comment goes with the line end before it; the LF put in front stands
            # for the last block's, and whatever stands there after is taken off again.
            block = _COMMENT.sub(b"", b"\n" + block)[1:]
        if block.startswith(b"\n"):  # blank lines: the last block ended a line
            block = (b"" if self._at_blank else b"\n") + block.lstrip(b"\n")
        block = _BLANKS.sub(b"\n\n", block)
        if block:
            self._at_blank = block == b"\n" or block.endswith(b"\n\n")
        if b"error:" in block:
            block = _rewrite_error_lines(block)
        return _valid_utf8(block)


def _line_end(chunk: bytes) -> int:
    """Where the whole lines of ``chunk`` end (0: none do).

    A CR at the very end is held back: the LF of a CRLF may come with the next chunk,
    and a blank line must not be seen in between.
    """
    end = len(chunk) - 1 if chunk.endswith(b"\r") else len(chunk)
    return max(chunk.rfind(b"\n", 0, end), chunk.rfind(b"\r", 0, end)) + 1


def _valid_utf8(block: bytes) -> bytes:
    try:
        block.decode()
    except UnicodeDecodeError:
        return block.decode(errors="replace").encode()
    return block


def _rewrite_error_lines(block: bytes) -> bytes:
    """llama.cpp's ``error: {...}`` lines as ``data: {"error": {...}}`` events.

    Builds of llama.cpp's server that find an error after the stream has begun (the
    prompt exceeding the context size above all) write it as an ``error:`` field,
    which server-sent events do not have: the SDK skips it, and the stream seemed to
    end "without finishing" (issue 21). As a ``data:`` event the SDK raises it as the
    APIError it is. What is kept of it is bounded (:func:`_kept`).
    """
    lines = block.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"error:"):
            payload = line[len(b"error:") :].strip()
            try:
                error = json.loads(payload)
            except ValueError:
                error = payload.decode("utf-8", "replace")
            lines[i] = b"data: " + json.dumps({"error": _kept(error)}).encode()
    return b"\n".join(lines)


def _kept(error: object) -> dict[str, object]:
    """An error's fields as far as cortan reads them: scalars, text cut short."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    kept: dict[str, object] = {}
    for key, value in list(error.items())[:MAX_ERROR_FIELDS]:
        if isinstance(value, str):
            kept[str(key)] = shorten(value, MAX_ERROR_TEXT)
        elif value is None or isinstance(value, bool | int | float):
            kept[str(key)] = value
    return kept


class WholeAnswer:
    """A whole ``chat.completion`` from a server that ignored ``stream: true``, as events.

    Some servers (and proxies) answer a streamed request with one JSON object. The SDK
    found no event in it and the answer was lost as "ended without finishing". Here the
    body (already bounded) is read whole and handed on as the one chunk it amounts to,
    then ``[DONE]``; an ``{"error": ...}`` body goes on as the error event it is, and
    what is not a JSON object passes unchanged.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body = bytearray()
        async for chunk in self._stream:
            body += chunk
        yield as_events(bytes(body))

    async def aclose(self) -> None:
        await self._stream.aclose()


def as_events(body: bytes) -> bytes:
    """``body``, a ``chat.completion``, as the event stream of one chunk (see above)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    if not isinstance(answer, dict):
        return body
    if "error" in answer:
        return b"data: " + json.dumps({"error": answer["error"]}).encode() + b"\n\n"
    choices = answer.get("choices")
    chunk = {
        **{k: v for k, v in answer.items() if k not in ("choices", "object")},
        "object": "chat.completion.chunk",
        "choices": [_as_delta(c) for c in choices] if isinstance(choices, list) else choices,
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"


def _as_delta(choice: object) -> object:
    """One choice's whole ``message`` as the ``delta`` that brings all of it."""
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        return choice
    delta = dict(choice["message"])
    calls = delta.get("tool_calls")
    if isinstance(calls, list):  # a delta's calls say which call each piece is part of
        delta["tool_calls"] = [
            {**call, "index": i} if isinstance(call, dict) else call for i, call in enumerate(calls)
        ]
    rest = {k: v for k, v in choice.items() if k != "message"}
    return {**rest, "delta": delta}
