"""Server-sent events, read as the OpenAI SDK read them: a chat's stream of chunks.

Layer: providers (beside ``openai.py``, which hands this module the body of a chat
and gets back each chunk's JSON). The reading follows the SDK's own (its
``_streaming.py``, after httpx-sse; Apache-2.0) line for line, so that what a server
sends reads as it did: lines end in CR, LF or CRLF; a blank line ends an event; an
event's ``data:`` lines are joined with LF; ``[DONE]`` ends the stream; an event
whose JSON has an ``error`` is :class:`~cortan.providers.openai_errors.StreamError`.
An event stream has been cleaned before it comes here (:mod:`cortan.providers.lines`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator
from contextlib import aclosing
from typing import NamedTuple

from cortan.providers.openai_errors import stream_error

_LINE_END = re.compile(b"[\\r\\n]")


class Event(NamedTuple):
    event: str | None
    data: str


class _Lines:
    """Whole lines out of chunks, split at CR, LF and CRLF (a CRLF cut in two too)."""

    def __init__(self) -> None:
        self._held = bytearray()
        self._skip_lf = False

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        start = 0
        for found in _LINE_END.finditer(chunk):
            end = found.start()
            if self._skip_lf and end == start and chunk[end] == 10:
                self._skip_lf = False
                start = end + 1
                continue
            self._skip_lf = chunk[end] == 13
            line = bytes(self._held) + chunk[start:end] if self._held else chunk[start:end]
            self._held.clear()
            start = end + 1
            yield line
        if start < len(chunk):
            self._skip_lf = False
            self._held += chunk[start:]

    def finish(self) -> Iterator[bytes]:
        if self._held:
            yield bytes(self._held)
            self._held.clear()


class _Decoder:
    """One event at a time out of lines (the spec's interpretation, as the SDK's)."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def decode(self, line: str) -> Event | None:
        if not line:
            if not self._event and not self._data and not self._last_id and self._retry is None:
                return None
            event = Event(self._event or None, "\n".join(self._data))
            self._event, self._data, self._retry = None, [], None  # the last id stays
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self._last_id = value
        elif field == "retry":
            with contextlib.suppress(ValueError):
                self._retry = int(value)
        return None


async def read_events(body: AsyncIterable[bytes]) -> AsyncGenerator[Event, None]:
    """The events of ``body``; a line that is not UTF-8 raises ``UnicodeDecodeError``."""
    lines, decoder = _Lines(), _Decoder()
    async for chunk in body:
        for line in lines.feed(chunk):
            if event := decoder.decode(line.decode("utf-8")):
                yield event
    for line in lines.finish():
        if event := decoder.decode(line.decode("utf-8")):
            yield event


async def read_chunks(body: AsyncIterable[bytes]) -> AsyncIterator[object]:
    """Each chunk's JSON, up to ``[DONE]``; an error event is raised.

    An event named ``thread.…`` (the Assistants API's) comes as ``{"data", "event"}``,
    as the SDK gave it, which no chat chunk is.
    """
    async with aclosing(read_events(body)) as events:
        async for event in events:
            if event.data.startswith("[DONE]"):
                return
            data = json.loads(event.data)
            thread = bool(event.event and event.event.startswith("thread."))
            if not thread and (error := stream_error(data)):
                raise error
            yield {"data": data, "event": event.event} if thread else data
