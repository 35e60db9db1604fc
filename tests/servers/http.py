"""Minimal HTTP/1.1 server core shared by the fake Ollama and OpenAI servers.

Hand-written on asyncio streams (no framework) so that tests control every
byte: responses are chunked and drained piece by piece, and faults are real -
the socket is really closed mid-stream, a stall really sends nothing.  Each
server runs its own event loop in a daemon thread; tests script it from the
main thread through the thread-safe methods of `FakeServer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import json
import threading
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, Self

__all__ = [
    "ClientGone",
    "Exchange",
    "FakeCall",
    "FakeServer",
    "Recorded",
    "Reply",
    "Wire",
    "play",
]

Fault = Literal["close_mid_stream", "malformed_line", "error_in_stream", "never_end"]


@dataclass(frozen=True)
class FakeCall:
    """A tool call the fake model makes: ``arguments`` as JSON text (sent as it is, so
    it may be malformed) or an object (Ollama sends objects; OpenAI gets it as JSON)."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None  # OpenAI's call id; one is made when None


@dataclass
class Reply:
    """What the server does for one chat request."""

    pieces: Sequence[str] = ("Hello", ", ", "world", "!")
    delay: float = 0.0  # seconds between pieces (non-stream: total wait before the body)
    first_byte_delay: float = 0.0  # stall before sending the status line (for timeouts)
    status: int = 200  # non-200 -> provider-shaped JSON error body, no stream
    error: str | None = None  # error message for non-200 or in-stream error
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "1"}
    fault: Fault | None = None
    fault_after: int = 1  # pieces sent before the fault
    prompt_tokens: int = 7
    completion_tokens: int | None = None  # default: len(pieces)
    finish_reason: str = "stop"  # openai finish_reason; ollama done_reason
    # A thinking model: these pieces of reasoning stream before the answer, in the wire's own
    # field (Ollama `message.thinking`; OpenAI-compatible `reasoning_field` of the delta),
    # unless the request turned thinking off (Ollama `think: false`).
    thinking: Sequence[str] = ()
    reasoning_field: str = "reasoning_content"  # or "reasoning" (Ollama's /v1, OpenRouter)
    reasoning_tokens: int | None = None  # reported in usage where the wire has a place for it
    # Raw wire control: `body` replaces the whole streamed body with these bytes (hostile
    # replies), or with a status other than 200 is sent as an HTML error page; `wire_splits`
    # cuts a streamed body, as the wire would spell it or as `body` gives it, into HTTP
    # chunks at these byte offsets (any offset, even inside a UTF-8 character or a JSON
    # token), each chunk written and drained on its own.
    body: bytes | None = None
    wire_splits: Sequence[int] | None = None
    # Tool calls, after the text pieces: Ollama sends them whole in one message;
    # OpenAI streams them as `tool_calls` deltas, each call's arguments cut into
    # `argument_pieces` pieces, the calls' deltas interleaved by index when
    # `interleave_calls` (as parallel calls arrive from some servers).
    tool_calls: Sequence[FakeCall] = ()
    argument_pieces: int = 1
    interleave_calls: bool = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def eval_count(self) -> int:
        return len(self.pieces) if self.completion_tokens is None else self.completion_tokens


class ClientGone(Exception):
    """The client closed the connection while a response was in progress."""


class _BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.1 request we understand."""


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-cased names
    json: Any  # parsed body, or None when absent or not JSON
    body: bytes
    received_at: float  # time.monotonic() when the request's first byte arrived


class _Conn:
    """A stream pair plus bytes read ahead by the disconnect watcher."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.pushback = reader, writer, b""

    async def readline(self) -> bytes:
        if (i := self.pushback.find(b"\n")) >= 0:
            line, self.pushback = self.pushback[: i + 1], self.pushback[i + 1 :]
            return line
        line, self.pushback = self.pushback + await self.reader.readline(), b""
        return line

    async def readexactly(self, n: int) -> bytes:
        head, self.pushback = self.pushback[:n], self.pushback[n:]
        return head + (await self.reader.readexactly(n - len(head)) if n > len(head) else b"")


async def _read_headers(conn: _Conn) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (raw := await conn.readline()) not in (b"\r\n", b"\n"):
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or len(headers) > 100:
            raise _BadRequest
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


async def _read_body(conn: _Conn, headers: Mapping[str, str]) -> bytes:
    body = b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while size := int((await conn.readline()).split(b";")[0], 16):
            body += (await conn.readexactly(size + 2))[:-2]
        await _read_headers(conn)  # trailers
    elif length := int(headers.get("content-length", "0")):
        body = await conn.readexactly(length)
    return body


async def _read_request(conn: _Conn) -> Recorded | None:
    try:
        return await _parse_request(conn)
    except ValueError:  # bad sizes, over-long lines
        raise _BadRequest from None


async def _parse_request(conn: _Conn) -> Recorded | None:
    if not conn.pushback:  # stamp the first byte, not the end of the request line
        conn.pushback = await conn.reader.read(1)
    received_at = time.monotonic()
    line = await conn.readline()
    if not line:
        return None  # clean close between requests
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest
    method, target, version = parts
    headers = await _read_headers(conn)
    if version == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
        headers.setdefault("connection", "close")
    body = await _read_body(conn, headers)
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    path, _, query = target.partition("?")
    return Recorded(method.upper(), path, query, headers, parsed, body, received_at)


class Exchange:
    """One request/response pair; every wait races a read that spots a client hang-up."""

    def __init__(self, conn: _Conn, request: Recorded) -> None:
        self._conn, self.request = conn, request
        self.keep_alive = "close" not in request.headers.get("connection", "").lower()
        self._watch: asyncio.Task[bytes] | None = None
        self.headers: dict[str, str] = {}  # sent with every response of this exchange

    def _watcher(self) -> asyncio.Task[bytes]:
        if self._watch is None:
            self._watch = asyncio.ensure_future(self._conn.reader.read(1))
        return self._watch

    def _harvest(self) -> None:
        """Raise ClientGone if the watcher saw EOF; keep any bytes it read."""
        watch = self._watch
        if watch is None or not watch.done():
            return
        self._watch = None
        if watch.cancelled() or watch.exception() is not None or not watch.result():
            raise ClientGone
        self._conn.pushback += watch.result()  # client pipelined a request

    async def _race(self, work: Awaitable[object]) -> None:
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "unretrieved"
        try:
            while True:
                self._harvest()
                done, _ = await asyncio.wait(
                    {task, self._watcher()}, return_when=asyncio.FIRST_COMPLETED
                )
                if task in done:
                    task.result()
                    return
        except (ConnectionError, OSError):
            raise ClientGone from None
        finally:
            task.cancel()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await self._race(asyncio.sleep(seconds))

    async def hang(self) -> None:
        """Send nothing until the client goes away (or the server stops)."""
        await self._race(asyncio.get_running_loop().create_future())

    def _head(self, status: int, headers: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
        base = {"date": email.utils.formatdate(usegmt=True), **self.headers, **headers}
        if not self.keep_alive:
            base["connection"] = "close"
        lines += [f"{k}: {v}" for k, v in base.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _write(self, data: bytes) -> None:
        self._harvest()
        self._conn.writer.write(data)
        await self._race(self._conn.writer.drain())

    async def send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] = {}
    ) -> None:
        head = {"content-type": content_type, "content-length": str(len(body)), **headers}
        await self._write(
            self._head(status, head) + (b"" if self.request.method == "HEAD" else body)
        )

    async def send_json(self, status: int, obj: object, headers: Mapping[str, str] = {}) -> None:
        await self.send(
            status, json.dumps(obj).encode(), "application/json; charset=utf-8", headers
        )

    async def start_stream(self, content_type: str, headers: Mapping[str, str] = {}) -> None:
        head = {"content-type": content_type, "transfer-encoding": "chunked", **headers}
        await self._write(self._head(200, head))

    async def send_chunk(self, data: bytes) -> None:
        if data:  # an empty chunk would end the body
            await self._write(b"%x\r\n%b\r\n" % (len(data), data))

    async def end_stream(self) -> None:
        await self._write(b"0\r\n\r\n")

    def abort(self) -> None:
        """Drop the connection now: no terminating chunk, no more requests."""
        self.keep_alive = False
        self._conn.writer.transport.abort()

    async def finish(self) -> None:
        """Stop watching; keep read-ahead bytes for the next request."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.wait({watch})
            if not watch.cancelled() and watch.exception() is None:
                self._conn.pushback += watch.result()


class Wire(Protocol):
    """How one protocol spells a chat reply (one instance per chat request)."""

    content_type: str

    def error_body(self, status: int, message: str | None) -> object: ...
    def complete(self, reply: Reply) -> object: ...
    def opening(self) -> list[bytes]: ...
    def piece(self, text: str) -> bytes: ...
    def thought(self, text: str, reply: Reply) -> bytes | None: ...
    def malformed(self) -> bytes: ...
    def stream_error(self, message: str | None) -> bytes: ...
    def closing(self, reply: Reply) -> list[bytes]: ...
    def tool_calls(self, reply: Reply) -> list[bytes]: ...


async def play(ex: Exchange, reply: Reply, wire: Wire, *, stream: bool) -> None:
    """Perform `reply` (delays, errors, faults) on `ex` in `wire`'s dialect."""
    await ex.sleep(reply.first_byte_delay)
    if reply.status != 200 and reply.body is not None:  # e.g. a proxy's HTML error page
        await ex.send(reply.status, reply.body, "text/html; charset=utf-8", reply.headers)
        return
    if reply.status != 200:
        await ex.send_json(reply.status, wire.error_body(reply.status, reply.error), reply.headers)
        return
    if not stream:
        await _play_whole(ex, reply, wire)
        return
    await ex.start_stream(wire.content_type, reply.headers)
    if reply.body is not None or reply.wire_splits is not None:
        await _play_raw(ex, reply, wire)
        return
    for data in wire.opening():
        await ex.send_chunk(data)
    await _think(ex, reply, wire)
    fault_at = min(reply.fault_after, len(reply.pieces)) if reply.fault else -1
    for i, text in enumerate(reply.pieces):
        if i == fault_at and not await _fault(ex, reply, wire):
            return
        await ex.sleep(reply.delay if i else 0)
        await ex.send_chunk(wire.piece(text))
    if fault_at == len(reply.pieces) and not await _fault(ex, reply, wire):
        return
    for data in [*wire.tool_calls(reply), *wire.closing(reply)]:
        await ex.send_chunk(data)
    await ex.end_stream()


async def _think(ex: Exchange, reply: Reply, wire: Wire) -> None:
    """The reasoning of a thinking model, before its answer, in the wire's own field."""
    for text in reply.thinking:
        if (thought := wire.thought(text, reply)) is not None:
            await ex.send_chunk(thought)
            await ex.sleep(reply.delay)


async def _play_raw(ex: Exchange, reply: Reply, wire: Wire) -> None:
    """Send the body as exact bytes, cut at `reply.wire_splits` (see `Reply`)."""
    if reply.body is not None:
        data = reply.body
    else:
        pieces = [wire.piece(text) for text in reply.pieces]
        data = b"".join([*wire.opening(), *pieces, *wire.closing(reply)])
    cuts = sorted({0, len(data), *(o for o in reply.wire_splits or () if 0 < o < len(data))})
    for start, end in itertools.pairwise(cuts):
        await ex.send_chunk(data[start:end])
    await ex.end_stream()


async def _fault(ex: Exchange, reply: Reply, wire: Wire) -> bool:
    """Inject `reply.fault` into a running stream; True if the stream goes on."""
    if reply.fault == "close_mid_stream":
        ex.abort()
        return False
    if reply.fault == "never_end":
        await ex.hang()  # returns only by ClientGone or server stop
    if reply.fault == "error_in_stream":
        await ex.send_chunk(wire.stream_error(reply.error))
        await ex.end_stream()
        return False
    await ex.send_chunk(wire.malformed())
    return True


async def _play_whole(ex: Exchange, reply: Reply, wire: Wire) -> None:
    """Non-streaming: the whole generation happens before the single body."""
    await ex.sleep(reply.delay * max(len(reply.pieces) - 1, 0))
    if reply.fault == "close_mid_stream":
        ex.abort()
    elif reply.fault == "never_end":
        await ex.hang()
    elif reply.fault == "malformed_line":
        await ex.send(
            200, b'{"model": "x", "mess', "application/json; charset=utf-8", reply.headers
        )
    elif reply.fault == "error_in_stream":
        await ex.send_json(500, wire.error_body(500, reply.error), reply.headers)
    else:
        await ex.send_json(200, wire.complete(reply), reply.headers)


class _TrackedProtocol(asyncio.StreamReaderProtocol):
    """start_server's protocol, keeping each open transport so stop() can close it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        serve: Any,
        transports: set[asyncio.BaseTransport],
    ) -> None:
        super().__init__(reader, serve)
        self._open = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._mine = transport
        self._open.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._open.discard(self._mine)
        super().connection_lost(exc)


class FakeServer:
    """Loop thread, scripting queue, request log and disconnect tracking for one fake."""

    default_models: ClassVar[Sequence[str]] = ()
    chat_path: ClassVar[str] = ""

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.default = Reply()
        self.models: list[str] = list(self.default_models)
        # Chat requests answered at once, as `OLLAMA_NUM_PARALLEL` sets it; the rest wait
        # their turn, as with a real server. None: no limit. Set before the first request.
        self.max_parallel: int | None = None
        self._in_flight = self._peak_in_flight = 0
        self._slots: asyncio.Semaphore | None = None
        self._cond = threading.Condition()
        self._queue: deque[Reply] = deque()
        self._requests: list[Recorded] = []
        # False in a benchmark's upstream (--quiet): the collector's full passes over tens of
        # thousands of kept requests stalled answers, and going direct at 64 in flight had
        # a p99 of 52-159 ms against 14-16 ms keeping none (bench_serve's baseline).
        self.record = True
        self._disconnects = self._connections = 0
        self._errors: list[Exception] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transports: set[asyncio.BaseTransport] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Self:
        if self._thread is None:
            self._ready.clear()
            self._start_error = None
            self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
            self._thread.name = type(self).__name__
            self._thread.start()
            self._ready.wait(10)
            if self._start_error is not None:
                self._thread = None
                raise self._start_error
        return self

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is not None and loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already gone
                loop.call_soon_threadsafe(stop.set)
            thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        loop = self._loop
        transports = self._transports

        def make_protocol() -> asyncio.StreamReaderProtocol:
            return _TrackedProtocol(asyncio.StreamReader(loop=loop), self._serve, transports)

        try:
            server = await loop.create_server(make_protocol, self.host, self.port)
        except OSError as exc:
            self._start_error = exc
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Every accepted socket is closed, even one whose handler never got to run.
        for transport in list(transports):
            transport.abort()  # type: ignore[attr-defined]
        for _ in range(3):
            await asyncio.sleep(0)  # abort() closes the socket on the next loop turn
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._cond:
            self._connections += 1
        conn = _Conn(reader, writer)
        try:
            while (request := await _read_request(conn)) is not None:
                with self._cond:
                    if self.record:
                        self._requests.append(request)
                    self._cond.notify_all()
                ex = Exchange(conn, request)
                try:
                    await self.handle(ex)
                except ClientGone:
                    with self._cond:
                        self._disconnects += 1
                        self._cond.notify_all()
                    break
                finally:
                    await ex.finish()
                if not ex.keep_alive:
                    break
        except _BadRequest:
            writer.write(
                b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
            )
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # server stop; re-raising trips a 3.11 bug in start_server's task callback
        except Exception as exc:  # a bug in the fake itself: make it visible
            traceback.print_exc()
            with self._cond:
                self._errors.append(exc)
        finally:
            self._tasks.discard(task)
            writer.close()
            # Let the transport really close before the loop may end (else: ResourceWarning).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    # -- protocol hooks ----------------------------------------------------------
    async def handle(self, ex: Exchange) -> None:
        raise NotImplementedError

    def knows(self, model: str) -> bool:
        return model in self.models

    async def chat(self, ex: Exchange, model: str, wire: Wire, *, stream: bool) -> None:
        """Play the next queued reply, else 404 for an unknown model, else `default`.

        Counted in flight from arrival to the end of the reply (waiting for a slot
        included: what a client has outstanding); `max_parallel` bounds those played.
        """
        with self._cond:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            self._cond.notify_all()
        try:
            if self.max_parallel is not None and self._slots is None:
                self._slots = asyncio.Semaphore(self.max_parallel)
            if self._slots is None:
                await self._play_chat(ex, model, wire, stream=stream)
            else:
                async with self._slots:
                    await self._play_chat(ex, model, wire, stream=stream)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    async def _play_chat(self, ex: Exchange, model: str, wire: Wire, *, stream: bool) -> None:
        with self._cond:
            reply = self._queue.popleft() if self._queue else None
        if reply is None and not self.knows(model):
            await ex.send_json(404, wire.error_body(404, None))
            return
        await play(ex, self.default if reply is None else reply, wire, stream=stream)

    # -- scripting (thread-safe) ---------------------------------------------------
    def queue(self, *replies: Reply) -> None:
        with self._cond:
            self._queue.extend(replies)

    @property
    def requests(self) -> list[Recorded]:
        with self._cond:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == self.chat_path]

    @property
    def in_flight(self) -> int:
        """Chat requests received and not yet answered."""
        with self._cond:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most chat requests outstanding at once since the start (or reset())."""
        with self._cond:
            return self._peak_in_flight

    def wait_in_flight(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least `n` chat requests are outstanding at once."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight >= n, timeout)

    @property
    def disconnects(self) -> int:
        with self._cond:
            return self._disconnects

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (to check keep-alive reuse)."""
        with self._cond:
            return self._connections

    @property
    def errors(self) -> list[Exception]:
        """Exceptions raised inside the fake's handlers (should stay empty)."""
        with self._cond:
            return list(self._errors)

    def wait_requests(self, n: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= n, timeout)

    def wait_disconnect(self, timeout: float = 5.0, count: int = 1) -> bool:
        """Wait until `count` responses were cut short by the client since reset()."""
        with self._cond:
            return self._cond.wait_for(lambda: self._disconnects >= count, timeout)

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self._requests.clear()
            self._errors.clear()
            self._disconnects = self._connections = 0
            self._peak_in_flight = self._in_flight
