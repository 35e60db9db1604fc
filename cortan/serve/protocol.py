"""uvicorn's HTTP/1.1 protocol (httptools) with the bounds it lacks on a request's head.

Layer: serve. uvicorn over httptools puts no limit on a request line and its
headers, in size or in time, and starts its idle timer only after a first
response: one ``X-A: aaaa…`` header that never ends held 370 MB of the gateway's
memory per 300 MB sent (and its event loop, re-copying the growing value), and a
connection that sent nothing, or a header line every few seconds, stayed open for
ever. Hypercorn's h11 refused a head over 16 KiB and timed idle connections from
the start. uvicorn's ``h11_max_incomplete_event_size`` is h11's alone, and h11 is
the pure-Python parser the gateway moved off for speed, so this subclass adds,
over httptools:

* **size**: past ``max_head_bytes`` of request line and headers, 431 and the
  connection closed (counted as the bytes arrive and before they are parsed, so a
  head that comes whole in one read is refused as one that trickles in);
* **time**: a head begun must be complete within ``head_timeout`` seconds
  (``serve.body_timeout``), else 408 and closed; a connection that has sent
  nothing yet gets ``serve.keep_alive`` seconds, as an idle one between requests;
* **absolute-form targets** (``GET http://host/path``): RFC 9112 (3.2.2) has an
  origin server take the host from the target and ignore ``Host``; uvicorn keeps
  only the path, so the target's host replaces the ``Host`` header here and the
  door's Host check sees the name the request really names.

* **a client that stops reading**: ``serve.write_timeout`` without progress while
  the transport is paused and the gateway gives up on it (stall.py): the app is told
  the client is gone, as uvicorn tells it when the connection is lost, so the chat is
  cancelled on the disconnect path; the connection is closed behind what it holds,
  and reset if the client takes nothing of that either.

* **a lingering close**: a refusal sent while the client is still sending (413
  for a body over the limit, 415, 408 for a slow body, 431, 400 for a head HTTP
  cannot parse) is followed by the gateway's end of the stream (FIN) and the
  client's bytes are read and thrown away until it stops (for ``LINGER_QUIET``
  seconds, or its end), for at most ``LINGER_MOST`` seconds and ``LINGER_BYTES``;
  then the socket closes. Closed at once, the unread bytes made the kernel reset the
  connection, and a client that finishes sending before it reads and gives up on
  a failed write (Python's ``urllib`` and ``http.client``) saw "Broken pipe" or
  "Connection reset" for 7 and 10 out of 10 oversized bodies instead of the 413
  (httpx and requests read the response after a failed write). nginx does the
  same (``lingering_close``).

Every refusal is one sentence in the OpenAI error shape (the path, and so the
API, is not known yet when the head is refused).

:class:`BoundedWSProtocol` does the same for wsproto's pongs and for a socket that
stops reading (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import re
from typing import TYPE_CHECKING, Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto import events
from wsproto.utilities import LocalProtocolError

from cortan.serve.stall import StallRule, StallWatch

if TYPE_CHECKING:
    from collections.abc import Callable

    from uvicorn.config import Config
    from uvicorn.server import ServerState

#: Largest request line and headers together. h11's (so Hypercorn's) limit was 16 KiB;
#: the clients of the gateway send under 2 KiB, and a long ``traceparent``/``baggage``
#: or cookie should not be what fails a request.
MAX_HEAD_BYTES = 64 << 10
#: The blank line that ends a head (a bare LF is a line end to the parser too).
_HEAD_END = re.compile(rb"\r?\n\r?\n")
#: The close code of a WebSocket given up on for not reading: 1008, a policy violation
#: (RFC 6455 7.4.1), since the client broke the gateway's rule; 1011 would say the
#: gateway itself had failed.
STALL_CLOSE_CODE = 1008
#: Seconds without a byte from a refused client after which its socket closes; nginx's
#: ``lingering_timeout`` is 5 s, but a client still sending pauses far less than this.
LINGER_QUIET = 1.0
#: The most a refused client is read for, in seconds and bytes, however fast it sends
#: (nginx: ``lingering_time`` 30 s): at a LAN's 100 MB/s, a 500 MB body is 5 s, and
#: 64 MiB read to be thrown away cost the loop some 20 ms.
LINGER_MOST = 5.0
LINGER_BYTES = 64 << 20


def _ignore_stall(scope: object) -> None:
    """The report of a protocol not told whom to tell (a benchmark's, with no gateway)."""


#: ``serve.write_timeout``'s default, telling no one.
DEFAULT_STALL = StallRule(30.0, _ignore_stall)


def make_protocol(
    *, max_head_bytes: int, head_timeout: float, stall: StallRule = DEFAULT_STALL
) -> type[HttpToolsProtocol]:
    """The protocol class uvicorn is handed (``Config(http=...)``), with these bounds."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout": head_timeout, "stall": stall},
    )


def make_ws_protocol(*, stall: StallRule) -> type[WSProtocol]:
    """The WebSocket protocol class uvicorn is handed (``Config(ws=...)``)."""
    return type("BoundedWSProtocol", (BoundedWSProtocol,), {"stall": stall})


class _Watched(asyncio.Protocol):
    """Either protocol's writes, watched for a client that stops reading (stall.py).

    The watch is made at the first pause, so a connection whose writes never pause
    (nearly all, and every idle WebSocket) holds nothing more.
    """

    stall = DEFAULT_STALL
    transport: asyncio.Transport
    _watch: StallWatch | None = None

    def _give_up(self) -> None:
        """The client took nothing for ``serve.write_timeout``: tell the app it is gone."""
        raise NotImplementedError

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._watch is None:
            self._watch = StallWatch(self.transport, self.stall.seconds, self._give_up)
        self._watch.paused()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._watch is not None:
            self._watch.resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.stop()
        super().connection_lost(exc)


class _CycleTransport:
    """The transport as a request's cycle sees it: its own ``write`` and ``is_closing``
    (bound once per connection, so a write costs what it did), and a ``close`` that
    lingers when the client is still sending the refused body."""

    __slots__ = ("close", "is_closing", "write")

    def __init__(self, transport: asyncio.Transport, close: Callable[[], None]) -> None:
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.close = close


class BoundedHttpToolsProtocol(_Watched, HttpToolsProtocol):
    """httptools under uvicorn, with a request head bounded in size and time, and a
    lingering close after a refusal."""

    max_head_bytes = MAX_HEAD_BYTES
    head_timeout = 30.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = False
        self._head_bytes = 0  # of the head being read, counted before it is parsed
        self._head_tail = b""  # the last bytes of a head not yet ended, for its blank line
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger_until = 0.0  # while lingering: when the socket closes whatever comes
        self._linger_last = 0.0  # when the last byte thrown away came
        self._linger_left = 0  # bytes that may still be thrown away
        self._cycle_transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._cycle_transport = cast(
            "asyncio.Transport", _CycleTransport(transport, self._close_for_cycle)
        )
        # uvicorn arms its idle timer only after a response: a silent connection would stay.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        # uvicorn cancels its idle timer only when the connection ends cleanly: one reset
        # by its client (an editor cancelling, a pool dropping a connection) stayed in the
        # loop's timers for serve.keep_alive seconds, and with it the connection's protocol,
        # request and answer: 2,000 connections reset once answered held 18 MB for 2 min.
        self._unset_keepalive_if_required()
        super().connection_lost(exc)

    def _give_up(self) -> None:
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # as connection_lost has it: receive() is a disconnect,
            cycle.message_event.set()  # and send() writes nothing more
        self.flow.resume_writing()  # a send waiting for room returns
        self.transport.close()  # what it holds still goes, if the client reads on
        if cycle is not None:
            self.stall.report(cycle.scope)

    def data_received(self, data: bytes) -> None:
        if self._linger_until:
            self._linger_last = self.loop.time()
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self.transport.close()
            return
        if self._reading_head() and self._over_head_limit(data):
            self._refuse(
                431, "headers_too_large", f"the request line and headers are over the "
                f"gateway's {self.max_head_bytes} byte limit",
            )  # fmt: skip
            return
        super().data_received(data)
        if self._in_head and self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _reading_head(self) -> bool:
        """Whether the next bytes are a request's head: not a body still being sent."""
        cycle: RequestResponseCycle | None = self.cycle
        return self._in_head or cycle is None or not cycle.more_body

    def _over_head_limit(self, data: bytes) -> bool:
        """Count the head's part of ``data`` (up to the blank line that ends it), before
        it is parsed: counted after, a head that came whole in one read (up to 256 KiB)
        was parsed, and let through, before it was ever counted."""
        tail = self._head_tail  # a head's last bytes: its blank line may be split
        seen = tail + data if tail else data
        end = _HEAD_END.search(seen)
        self._head_bytes += (end.end() if end is not None else len(seen)) - len(tail)
        self._head_tail = seen[-3:] if end is None else b""
        if end is not None:
            over, self._head_bytes = self._head_bytes > self.max_head_bytes, 0
            return over
        return self._head_bytes > self.max_head_bytes

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        if self.url[:1] not in (b"/", b"*"):
            self._take_host_from_target()
        super().on_headers_complete()
        if self.cycle is not None:  # this request's (or, on an upgrade, the last one's)
            self.cycle.transport = self._cycle_transport  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        """A head or chunked body HTTP cannot parse: refused as the others are (uvicorn
        wrote plain text and closed at once)."""
        self._refuse(400, "bad_request", "the request is not valid HTTP/1.1")

    def _take_host_from_target(self) -> None:
        target = httptools.parse_url(self.url)  # a bad URL: uvicorn's own 400
        host = target.host or b""
        if b":" in host:  # an IPv6 literal, bracketed as in a Host header
            host = b"[" + host + b"]"
        if target.port is not None:
            host += b":%d" % target.port
        self.headers[:] = [(n, v) for n, v in self.headers if n != b"host"] + [(b"host", host)]

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(
                408, "head_timeout", f"the request line and headers did not arrive within "
                f"{self.head_timeout:g} s",
            )  # fmt: skip

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, kind: str, message: str) -> None:
        """One sentence and the connection closed; nothing when a response is under way
        (the refused bytes are a pipelined request's, whose turn has not come)."""
        self._in_head = False
        self._stop_head_timer()
        cycle: RequestResponseCycle | None = self.cycle  # None before the first request
        if cycle is not None and cycle.more_body and not cycle.response_started:
            # A body HTTP cannot parse (a bad chunk size): the refusal is its request's
            # answer; the app reads a disconnect, and what it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        elif cycle is not None and not cycle.response_complete:
            self.transport.close()
            return
        body = json.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "code": kind}}
        ).encode()
        phrase = http.HTTPStatus(status).phrase.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body)
        )
        self._linger()

    def _close_for_cycle(self) -> None:
        """A cycle's close: lingering after a response sent before its request's body was
        all read (413, 415, 408); at once otherwise (an answer cut short by a fault, or
        one that asked for ``connection: close``), as uvicorn closes."""
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body:
            self._linger()
        else:
            self.transport.close()

    def _linger(self) -> None:
        """End the gateway's side, and read and drop what the client still sends, so that
        it reads the refusal instead of a reset (module docstring)."""
        if self.transport.is_closing() or self._linger_until:
            return
        now = self.loop.time()
        self._linger_until, self._linger_last = now + LINGER_MOST, now
        self._linger_left = LINGER_BYTES
        self._unset_keepalive_if_required()
        self.flow.resume_reading()  # uvicorn pauses a body it holds 64 KiB of
        self.transport.write_eof()  # a FIN once the refusal is out
        self.loop.call_later(LINGER_QUIET, self._linger_check)

    def _linger_check(self) -> None:
        if not self._linger_until or self.transport.is_closing():
            return
        now = self.loop.time()
        if now >= self._linger_until or now - self._linger_last >= LINGER_QUIET:
            self.transport.close()
        else:
            wake = min(self._linger_last + LINGER_QUIET, self._linger_until)
            self.loop.call_at(wake, self._linger_check)


class BoundedWSProtocol(_Watched, WSProtocol):
    """uvicorn's wsproto protocol, answering pings no faster than the client reads.

    uvicorn writes a pong for every ping at once, whatever the transport holds: a
    client that sent pings and read nothing grew the gateway by 350 MB in 20 s. While
    the transport is over its high-water mark, only the latest ping is remembered and
    answered once it drains, as RFC 6455 (5.5.3) allows.

    A socket that takes nothing for ``serve.write_timeout`` is given up on: the app
    receives a disconnect (code 1008), which cancels its chats as a socket that went
    away does, and a close frame with that code follows what the socket holds, for a
    client that reads on (uvicorn's own close would wait for room that never comes).
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._owed: events.Ping | None = None

    def handle_ping(self, event: events.Ping) -> None:
        if self.writable.is_set():
            super().handle_ping(event)
        else:
            self._owed = event

    def resume_writing(self) -> None:
        super().resume_writing()
        owed, self._owed = self._owed, None
        if owed is not None and not self.transport.is_closing():
            super().handle_ping(owed)

    def _give_up(self) -> None:
        reason = f"the client read nothing for {self.stall.seconds:g} s (serve.write_timeout)"
        if self.handshake_complete and not self.close_sent and not self.response_started:
            with contextlib.suppress(LocalProtocolError):  # the client had begun to close
                close = events.CloseConnection(code=STALL_CLOSE_CODE, reason=reason)
                self.transport.write(self.conn.send(close))
        self.close_sent = self.disconnected = True  # the app's sends fail, as on a lost socket
        self.writable.set()  # and those waiting for room return
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": STALL_CLOSE_CODE, "reason": reason}
        )
        self.transport.close()
        self.stall.report(self.scope)
