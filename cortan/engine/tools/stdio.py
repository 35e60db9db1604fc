"""A stdio MCP server's pipes, read with a bound: cortan's own transport for the SDK client.

Layer: engine; imported by :mod:`.mcp` only when a stdio server starts (it needs the
``mcp`` extra and anyio, which the SDK brings).

Why not the SDK's ``stdio_client``: it holds a server's unfinished line in one string
and joins each new chunk to it, so a server that writes one line without end (by
bug or on purpose) takes cortan's memory without bound and its CPU in quadratic
time, for the rest of the process, even after the call has timed out; and one byte
that is not UTF-8 ends the connection. Here:

* one message is at most ``max_bytes`` (:data:`MAX_MESSAGE_BYTES`): past it the rest
  of the line is read and thrown away as it arrives (linear time, no memory kept),
  and the call it answers fails at once with a sentence saying so, when its id can
  be read from the line's start; the server goes on serving other calls. A line
  that goes on past eight times that is a server that will not stop: the
  connection ends there, so it cannot keep cortan's CPU busy for the session;
* a line that cannot be read as JSON-RPC (too deeply nested, not JSON, a log line
  printed on stdout) fails its call the same way when it names one, and is
  otherwise skipped; bytes that are not UTF-8 are replaced, not fatal;
* the process is a session of its own and is stopped as the SDK stops one (stdin
  closed, a grace period, then its whole process group), so nothing it started
  outlives cortan.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cortan.config.settings import McpServer

MAX_MESSAGE_BYTES = 8 << 20  # one JSON-RPC message from a server: a tool list or a result
_CHUNK = 1 << 16
_GRACE = 2.0  # seconds a server has to exit once its stdin is closed
_KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL to its process group
_ENDLESS = 8  # a line this many times max_bytes long ends the connection
_HEAD = 512  # bytes of a line searched for the id of the request it answers
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,128}")')


class Lines:
    """Frames a server's stdout into lines of at most ``max_bytes``, in linear time.

    :meth:`feed` takes a chunk and returns what to hand on: ``("line", bytes)`` for a
    whole line, ``("too-long", start)`` once when a line passes the bound (its start,
    to find the call it answers), then nothing more of that line; ``endless`` turns
    true when one line has gone on past ``_ENDLESS`` times the bound.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._dropped = -1  # bytes of a too-long line thrown away so far; -1: none is
        self.endless = False

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        while chunk and not self.endless:
            end = chunk.find(b"\n")
            piece, chunk = (chunk, b"") if end < 0 else (chunk[:end], chunk[end + 1 :])
            if self._dropped >= 0:
                self._dropped += len(piece)
                self.endless = self._dropped > _ENDLESS * self.max_bytes
            else:
                self._buffer += piece
                if len(self._buffer) > self.max_bytes:  # its call fails now, not at the end
                    out.append(("too-long", bytes(self._buffer[:_HEAD])))
                    self._dropped = len(self._buffer)
                    self._buffer.clear()
            if end >= 0:
                if self._dropped < 0 and self._buffer.strip():
                    out.append(("line", bytes(self._buffer)))
                self._dropped = -1
                self._buffer.clear()
        return out


def request_id(line: bytes) -> int | str | None:
    """The id a line's start names (the call it answers), or None."""
    found = _ID.search(line[:_HEAD])
    if found is None:
        return None
    ident = found[1].decode("utf-8", errors="replace")
    return ident[1:-1] if ident.startswith('"') else int(ident)


def _message(line: bytes) -> Any:
    """A line as the session takes it; one it cannot use fails the call it names."""
    import mcp_types as types
    from mcp.shared.message import SessionMessage

    try:
        text = line.decode("utf-8", errors="replace")
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(text, by_name=False))
    except ValueError:
        return _failed(line, "its answer could not be read as JSON-RPC")


def _failed(line: bytes, why: str) -> Any:
    """An error answer to the call ``line`` names, or (naming none) one the session skips."""
    import mcp_types as types
    from mcp.shared.message import SessionMessage

    ident = request_id(line)
    if ident is None:
        return ValueError(why)
    error = types.ErrorData(code=types.INTERNAL_ERROR, message=why)
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=ident, error=error))


@contextlib.asynccontextmanager
async def bounded_stdio(
    config: McpServer,
    errlog: Any,
    on_fault: Callable[[str], None],
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's pair of streams for a server started from ``config``'s command.

    ``on_fault`` hears why the connection ended, when the server ended it (it exited,
    it would not stop writing one line): the session itself only says "closed".
    """
    import anyio
    from mcp.client.stdio import get_default_environment

    process = await anyio.open_process(
        [config.command or "", *config.args],
        env=get_default_environment() | dict(config.env),
        stderr=errlog,
        start_new_session=True,
    )
    stdout, stdin = process.stdout, process.stdin
    assert stdout is not None  # both are pipes
    assert stdin is not None
    to_session, read_stream = anyio.create_memory_object_stream[Any](0)
    write_stream, from_session = anyio.create_memory_object_stream[Any](0)
    stopping = False

    async def read() -> None:
        lines = Lines(max_bytes)
        async with to_session:
            with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, OSError):
                while not lines.endless:
                    for kind, data in lines.feed(await stdout.receive(_CHUNK)):
                        too_long = f"it sent an answer larger than {_size(max_bytes)}"
                        item = _message(data) if kind == "line" else _failed(data, too_long)
                        await to_session.send(item)
            if lines.endless:
                on_fault(
                    f"it sent one line of more than {_size(_ENDLESS * max_bytes)}; "
                    "cortan reads no more of it"
                )
            elif not stopping:
                on_fault(await _exit_status(process))

    async def write() -> None:
        async with from_session:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                async for message in from_session:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await stdin.send(data.encode("utf-8") + b"\n")
        await to_session.aclose()  # a server that stopped reading: the session sees the end

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        tasks.start_soon(write)
        try:
            yield read_stream, write_stream
        finally:
            stopping = True
            with anyio.CancelScope(shield=True):
                await _stop(process)
                for stream in (read_stream, write_stream, to_session, from_session):
                    await stream.aclose()
            tasks.cancel_scope.cancel()


async def _exited(process: Any, seconds: float) -> bool:
    """Whether ``process`` has exited (and been reaped) within ``seconds``.

    Polled, not ``process.wait()``: that waits for its pipes to close too, which a
    descendant that left its process group may hold open for ever.
    """
    import anyio

    with anyio.move_on_after(seconds):
        while process.returncode is None:  # noqa: ASYNC110  (see the docstring)
            await anyio.sleep(0.01)
    return process.returncode is not None


async def _stop(process: Any) -> None:
    """Close its stdin, give it a moment, then end its whole process group."""
    import anyio
    from mcp.os.posix.utilities import terminate_posix_process_tree

    closing = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)
    with contextlib.suppress(*closing):
        await process.stdin.aclose()
    if not await _exited(process, _GRACE):
        with contextlib.suppress(OSError):
            await terminate_posix_process_tree(process, _KILL_GRACE)
        await _exited(process, _GRACE)  # reaped, so gone, not a zombie
    with contextlib.suppress(*closing):
        await process.stdout.aclose()
    # The transport, closed by hand since the process is not awaited (see _exited).
    transport = getattr(getattr(process, "_process", None), "_transport", None)
    with contextlib.suppress(OSError, AttributeError):
        transport.close()  # type: ignore[union-attr]


async def _exit_status(process: Any) -> str:
    """Why a server's output ended: its exit status, when it comes within a moment."""
    if not await _exited(process, 0.5):
        return "it closed its output"
    status = process.returncode
    return f"it exited (status {status})" if status >= 0 else f"it was killed (signal {-status})"


def _size(n: int) -> str:
    from cortan.core.text import format_size

    return format_size(n)
