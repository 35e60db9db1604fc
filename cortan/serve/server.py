"""Serving the gateway: Hypercorn on a socket bound here, signals, draining, the exit code.

Layer: serve. The socket is bound and listening before Hypercorn starts, so a
port in use is one sentence, port 0 gets its real number before the first
request, and a client connecting in the meantime waits in the backlog instead of
being refused. Hypercorn takes the socket by its descriptor (``fd://``).

Stopping is the gateway's own (:meth:`cortan.serve.gateway.Gateway.drain`): the
first Ctrl-C or SIGTERM drains, a second one cancels what is left at once (partial
answers are still recorded); then Hypercorn closes the connections and returns.
Exit: 0 after SIGTERM or a ``stop`` event (a service manager's ordinary stop),
130 after Ctrl-C, as every cortan command.

Idle connections stay open ``serve.keep_alive`` seconds (120), longer than the
clients that talk to the gateway keep them in their pools (httpx, under the OpenAI
and Ollama libraries, 5 s; Node's fetch 4 s; aiohttp 15 s; Go and Rust's hyper
90 s), so the client always closes first. Hypercorn's own default, 5 s, equals
httpx's: a request sent on a connection idle for about 5 s crossed the gateway's
close and failed with ``httpx.ReadError``. Hypercorn also keeps a socket its client
has closed until this timer fires (CLOSE-WAIT, a descriptor and some 13 KB each):
a lower ``serve.keep_alive`` bounds that for clients opening a connection per request.

Hypercorn, not uvicorn: uvicorn requires click, and click in the install makes
httpx import its command line (click, rich, pygments) in every ``cortan ask``.
Hypercorn is the other well-kept ASGI server (by the Quart and Flask
maintainers), with HTTP/1.1, HTTP/2 and WebSockets, and a programmatic
``serve()`` with a shutdown trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from cortan.core.errors import CortanError

if TYPE_CHECKING:
    from cortan.serve.gateway import Gateway

EXIT_OK, EXIT_INTERRUPTED = 0, 130
BACKLOG = 2048
#: Seconds Hypercorn gives responses to finish writing once the gateway has drained.
GRACE = 2.0


class Listener(NamedTuple):
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


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


async def serve(
    gateway: Gateway,
    sock: socket.socket,
    *,
    stopper: Stopper,
    on_stopping: Callable[[], None] | None = None,
) -> int:
    """Serve ``gateway`` on ``sock`` until ``stopper`` says; drain; the exit code."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    limits = gateway.limits
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("cortan.serve.server")
    config.graceful_timeout = GRACE
    config.keep_alive_timeout = limits.keep_alive
    config.include_server_header = False
    config.websocket_max_message_size = limits.max_body_bytes
    config.backlog = BACKLOG
    shutdown = asyncio.Event()

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
        shutdown.set()

    stopping = asyncio.create_task(drain_then_shut())
    try:
        await hypercorn_serve(gateway.asgi, config, shutdown_trigger=shutdown.wait)  # type: ignore[arg-type]
    finally:
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
    return stopper.code
