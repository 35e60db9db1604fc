"""Write stalls: a client that takes nothing of what the gateway sends, for too long.

Layer: serve. A client that stops reading stops the gateway's writes where they
really stop: at its connection's transport, which flow control pauses once what it
holds is over its high-water mark. From there the stall backs up to every writer
at once (uvicorn's ``send`` waits for the pause to end, the relay fills, the engine
stops reading from upstream; on a WebSocket even a close frame waits), and it holds
the write no ``send`` waits for: the rest of a whole answer, written in one piece.
Only the protocol sees all of these, and only it can close a connection whose
buffer will not drain. Without a bound such a client held its upstream request and
its place among ``serve.streams_per_host`` until ``timeouts.total`` (30 minutes),
and a whole answer's connection for as long as the client kept it open.

:class:`StallWatch` measures, while the transport is paused, time without
progress, not time paused: progress is the count of bytes written and not yet taken
by the client going down. That count is the transport's buffer and, on Linux, the
kernel's send queue too (``SIOCOUTQ``), which goes down each time the client's side
opens its window again (on loopback, at least every 64 KiB it reads). The kernel's part
matters: its queue grows to some 3 MB on loopback, and the kernel lets the transport
write again only once a third of it has gone, so with the transport's buffer alone a
client reading 100 KB/s showed no progress in 8 s. Elsewhere the transport's buffer
alone is looked at, as nginx's ``send_timeout`` does (between two writes the socket
takes).

After ``serve.write_timeout`` seconds without progress the protocol gives up on the
client (``give_up``: its app is told the client is gone, so its chats are cancelled
on the path a disconnect takes, and the connection is closed behind what it holds);
if the client then takes nothing for as long again, the connection is reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

#: How often per ``serve.write_timeout`` a paused connection's progress is looked at:
#: a client is cut off between 1 and 1.25 times the timeout after its last progress.
TICKS = 4


class StallRule(NamedTuple):
    """What the protocols are handed: the bound, and whom to tell of a client cut off."""

    seconds: float  # serve.write_timeout
    report: Callable[[Mapping[str, Any]], None]  # the cut-off request's ASGI scope


if sys.platform == "linux":
    import fcntl
    import termios

    def _kernel_queued(fd: int) -> int:
        """Bytes in the socket's send queue, not yet acknowledged by the client's side."""
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])

else:

    def _kernel_queued(fd: int) -> int:
        return 0


def get_queued(transport: asyncio.WriteTransport) -> int:
    """Bytes written to ``transport`` that its client has not taken yet."""
    queued = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):  # closed meanwhile, or not a TCP socket
            queued += _kernel_queued(sock.fileno())
    return queued


def _reset(transport: asyncio.WriteTransport) -> None:
    """Close at once, and drop what the kernel holds too: a reset, not a FIN behind it.

    A plain close leaves the unsent bytes to the kernel (megabytes, for a client that
    reads nothing), which keeps sending them to a window that stays shut.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class StallWatch:
    """Times one connection's paused writes, then gives up on it (see the module docstring).

    The protocol calls :meth:`paused` and :meth:`resumed` from its own
    ``pause_writing`` and ``resume_writing``, and :meth:`stop` when the connection is
    lost; a connection whose writes never pause costs nothing.
    """

    __slots__ = (
        "_gave_up", "_give_up", "_queued", "_seconds", "_since", "_stopped", "_timer", "_transport",
    )  # fmt: skip

    def __init__(
        self, transport: asyncio.WriteTransport, seconds: float, give_up: Callable[[], None]
    ) -> None:
        self._transport = transport
        self._seconds = seconds
        self._give_up = give_up
        self._timer: asyncio.TimerHandle | None = None
        self._queued = 0  # what the client had not taken at the last progress
        self._since = 0.0  # when that was
        self._gave_up = False
        self._stopped = False

    def paused(self) -> None:
        if self._timer is None:
            self._progressed()
            self._arm()

    def resumed(self) -> None:
        if not self._gave_up:  # given up on, it is watched until it is closed
            self._cancel()

    def stop(self) -> None:
        self._stopped = True
        self._cancel()

    def _progressed(self) -> None:
        self._queued = get_queued(self._transport)
        self._since = asyncio.get_running_loop().time()

    def _arm(self) -> None:
        if not self._stopped:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._seconds / TICKS, self._tick)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        if get_queued(self._transport) < self._queued:
            self._progressed()
        elif asyncio.get_running_loop().time() - self._since >= self._seconds:
            if self._gave_up:
                _reset(self._transport)
                return
            self._gave_up = True
            self._give_up()
            self._progressed()  # the time it has to take what is left starts now
        self._arm()
