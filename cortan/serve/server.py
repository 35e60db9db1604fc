"""Serving the gateway: uvicorn on a socket bound here, signals, draining, the exit code.

Layer: serve. The socket is bound and listening before uvicorn starts, so a port
in use is one sentence, port 0 gets its real number before the first request, and
a client connecting in the meantime waits in the backlog instead of being refused.

Stopping is the gateway's own (:meth:`cortan.serve.gateway.Gateway.drain`): the
first Ctrl-C or SIGTERM drains, a second one cancels what is left at once (partial
answers are still recorded); then uvicorn closes the connections and returns.
uvicorn's own signal handling is switched off (:class:`_Server`), so that there is
one owner of the signals. Exit: 0 after SIGTERM or a ``stop`` event (a service
manager's ordinary stop), 130 after Ctrl-C, as every cortan command.

Idle connections stay open ``serve.keep_alive`` seconds (120), longer than the
clients that talk to the gateway keep them in their pools (httpx, under the OpenAI
and Ollama libraries, 5 s; Node's fetch 4 s; aiohttp 15 s; Go and Rust's hyper
90 s), so the client always closes first: a server that closes an idle connection
as the client reuses it fails that request (uvicorn's own default is 5 s, httpx's
too; ``httpx.ReadError`` was seen).

uvicorn with httptools (HTTP/1.1 parsed in C), wsproto for WebSockets and uvloop
where it exists: in a profile of whole completions, the server's share of the
gateway's CPU per request was a sixth with Hypercorn and h11 (pure Python), and
uvicorn with httptools and uvloop took 0.80-0.84x Hypercorn's CPU per request
(docs/performance.md). wsproto, not the websockets package, for idle sockets'
memory (bench_held).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import resource
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import uvicorn

from cortan.core.errors import CortanError
from cortan.serve.protocol import MAX_HEAD_BYTES, make_protocol, make_ws_protocol
from cortan.serve.stall import StallRule

if TYPE_CHECKING:
    from cortan.serve.gateway import Gateway

EXIT_OK, EXIT_INTERRUPTED = 0, 130
BACKLOG = 2048
#: Seconds uvicorn gives responses to finish writing once the gateway has drained.
GRACE = 2.0


class Listener(NamedTuple):
    host: str
    port: int

    @property
    def url(self) -> str:
        """Where a client on this machine connects: loopback for a wildcard address,
        which can be bound but not reached (addresses.py)."""
        from cortan.serve.addresses import format_url

        if self.everywhere:
            return format_url("::1" if ":" in self.host else "127.0.0.1", self.port)
        return format_url(self.host, self.port)

    @property
    def everywhere(self) -> bool:
        """Bound to every address of the machine (``0.0.0.0``, ``::``)."""
        from cortan.serve.addresses import WILDCARDS

        return self.host in WILDCARDS

    def elsewhere(self) -> list[str]:
        """The URLs other machines may use: one per address of this one, for a wildcard."""
        from cortan.serve.addresses import format_url, get_addresses

        return [format_url(address, self.port) for address in get_addresses(self.host)]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or one sentence saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CortanError(
                f"port {port} on {host} is in use: is another `cortan serve` running? "
                "(--port picks another)"
            ) from None
        raise CortanError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except OverflowError:
        sock.close()
        raise CortanError(f"port {port} is not a port number (0 to 65535)") from None
    return sock


def raise_open_files_limit() -> None:
    """Allow as many open sockets as the system lets this user have (idle WebSockets)."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (not on Windows), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class Stopper:
    """What stops the server: a signal, or ``stop`` set by whoever runs it (tests)."""

    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self.stop = stop or asyncio.Event()
        self.code = EXIT_OK
        self.hurry = asyncio.Event()  # a second signal: no more waiting

    def on_signal(self, signum: int) -> None:
        if self.stop.is_set():
            self.hurry.set()
            return
        self.code = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK
        self.stop.set()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.on_signal, signum)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: :class:`Stopper` owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    gateway: Gateway,
    sock: socket.socket,
    *,
    stopper: Stopper,
    on_stopping: Callable[[], None] | None = None,
) -> int:
    """Serve ``gateway`` on ``sock`` until ``stopper`` says; drain; the exit code."""
    limits = gateway.limits
    stall = StallRule(limits.write_timeout, gateway.stalled)  # a client that stops reading
    config = uvicorn.Config(
        gateway.asgi,
        # httptools, bounded: a request head's size and time (protocol.py says why)
        http=make_protocol(
            max_head_bytes=MAX_HEAD_BYTES, head_timeout=limits.body_timeout, stall=stall
        ),
        ws=make_ws_protocol(stall=stall),  # wsproto, pongs bounded (protocol.py)
        lifespan="off",
        access_log=False,  # the gateway logs each request itself, with its id
        proxy_headers=False,  # no proxy is trusted: the client's address is the peer's
        server_header=False,
        date_header=False,
        timeout_keep_alive=math.ceil(limits.keep_alive),
        ws_max_size=limits.max_body_bytes,
        ws_ping_interval=None,  # idle WebSockets cost nothing until they speak
        timeout_graceful_shutdown=math.ceil(GRACE),
        backlog=BACKLOG,
        log_config=None,
    )
    server = _Server(config)

    async def drain_then_shut() -> None:
        await stopper.stop.wait()
        if on_stopping is not None:
            on_stopping()
        drain = asyncio.ensure_future(gateway.drain(limits.drain_timeout))
        hurry = asyncio.ensure_future(stopper.hurry.wait())
        await asyncio.wait({drain, hurry}, return_when=asyncio.FIRST_COMPLETED)
        if not drain.done():
            await gateway.drain(0)
            await drain
        hurry.cancel()
        server.should_exit = True

    stopping = asyncio.create_task(drain_then_shut())
    try:
        await server.serve(sockets=[sock])
    finally:
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        sock.close()
    return stopper.code
