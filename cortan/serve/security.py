"""The door every request comes through: token, Host header, origins, request ids.

Layer: serve. A pure ASGI middleware (no per-request objects beyond a header
list), in front of every route:

* **Host header** (DNS rebinding): a web page whose name an attacker points at
  127.0.0.1 still sends its own name as ``Host``; only loopback names, names in
  ``serve.allowed_hosts``, and, when listening beyond loopback, IP literals (a
  rebinding needs a name) pass. Others get 421.
* **Origin**: a browser request from an origin not in ``serve.cors_origins`` is
  refused (403), preflights included; allowed origins get CORS headers naming
  exactly them, never ``*``.
* **Token**: ``Authorization: Bearer <token>`` (what the OpenAI and Ollama client
  libraries send as their API key), compared in constant time; a browser's
  WebSocket may offer it as the subprotocol ``bearer.<token>`` instead. Missing or
  wrong: 401. ``/health`` alone is open.
* **Connections**: past ``serve.max_connections`` requests and sockets open, 503;
  once the gateway is stopping, every new request but ``/health`` and ``/metrics``
  and every new WebSocket, 503 (``stopping``).
* **Request id**: ``X-Request-ID`` as sent (when it is a sane token) or a new one,
  returned on every response and handed on in the scope with a W3C
  ``traceparent`` for upstream (the client's trace continued when it sent one).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from cortan.core.requests import Trace
from cortan.serve.replies import (
    FAULT,
    Message,
    Receive,
    RequestError,
    Scope,
    Send,
    log_fault,
    send_error,
)

if TYPE_CHECKING:
    from cortan.serve.metrics import Metrics

App = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
PORT = re.compile(r"[0-9]{0,5}")  # RFC 3986: the port of an authority may be empty
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
OPEN_PATHS = frozenset({"/health"})
SUBPROTOCOL_PREFIX = "bearer."
CORS_METHODS = b"GET, POST, OPTIONS"
CORS_HEADERS = b"authorization, content-type, x-request-id, x-cortan-client"


#: Ids need to be unique, not secret: a generator seeded once from the system's
#: randomness. ``secrets`` asks the kernel for each id, and that call lets go of the
#: interpreter's lock, which the store's writer thread then held for a while: 6% of the
#: event loop's time per request in the gateway's profile.
_ids = random.Random()


def make_trace(request_id: str | None, traceparent: str | None) -> Trace:
    """The request's id (the client's, when sane) and the traceparent to send upstream."""
    if request_id is None or not REQUEST_ID.fullmatch(request_id):
        request_id = f"{_ids.getrandbits(128):032x}"
    span = f"{_ids.getrandbits(64):016x}"
    if traceparent and (found := TRACEPARENT.fullmatch(traceparent.strip().lower())):
        trace_id, _, flags = found.groups()
        if trace_id != "0" * 32:
            return Trace(request_id, f"00-{trace_id}-{span}-{flags}")
    trace_id = request_id if re.fullmatch(r"[0-9a-f]{32}", request_id) else ""
    if not trace_id or trace_id == "0" * 32:
        trace_id = hashlib.sha256(request_id.encode()).hexdigest()[:32]
    return Trace(request_id, f"00-{trace_id}-{span}-01")


def _check_codings(scope: Scope) -> None:
    """Refuse a body in a transfer coding other than chunked (RFC 9112 6.1: 501).

    httptools takes ``gzip, chunked`` and reads the body as if it were only chunked:
    a proxy in front that honours the codings would see another body than the gateway.
    """
    codings = [
        coding.strip().lower()
        for name, value in scope["headers"] if name == b"transfer-encoding"
        for coding in value.split(b",")
    ]  # fmt: skip
    if codings != [b"chunked"]:
        shown = b", ".join(codings).decode("latin-1")[:80]
        raise RequestError(
            501, "transfer_coding", f"the gateway reads request bodies plain or chunked, not "
            f"in the transfer coding {shown!r}", {"connection": "close"},
        )  # fmt: skip


class HostCheck:
    """Which ``Host`` headers the gateway answers (see the module docstring)."""

    def __init__(self, allowed: Iterable[str], *, beyond_loopback: bool) -> None:
        self._names = LOOPBACK_NAMES | {name.lower().strip() for name in allowed}
        self._ip_literals = beyond_loopback

    def allows(self, host: str) -> bool:
        name = _strip_port(host.lower())
        if name is None:
            return False
        if name in self._names:
            return True
        try:
            address = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            return name.endswith(".localhost")
        return self._ip_literals or address.is_loopback


def _strip_port(host: str) -> str | None:
    """The name of ``name[:port]`` or ``[v6]:port``; None when what follows it is no port."""
    if host.startswith("["):  # [::1]:8080
        name, _, port = host.partition("]")
        if port and not (port.startswith(":") and PORT.fullmatch(port[1:])):
            return None
        return name + "]"
    if host.count(":") != 1:
        return host  # a bare name, or an IPv6 literal without brackets
    name, _, port = host.partition(":")
    return name if PORT.fullmatch(port) else None


class Door:
    """The ASGI middleware in front of the routes (see the module docstring)."""

    def __init__(
        self,
        app: App,
        *,
        token: str | None,
        hosts: HostCheck,
        origins: Iterable[str],
        max_connections: int,
        metrics: Metrics,
    ) -> None:
        self._app = app
        self._token = token.encode() if token is not None else None
        self._hosts = hosts
        self._origins = frozenset(o.encode() for o in origins)
        self._max_connections = max_connections
        self._metrics = metrics
        self.open = 0
        self.draining = False
        """Set as the gateway stops: every new request is refused but a scrape of ``/metrics``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # the last of a repeated header wins
        origin = headers.get(b"origin")
        try:
            self._check(scope, headers, origin)
        except RequestError as refused:
            self._metrics.rejected(refused.kind)
            await self._refuse(scope, send, refused, origin)
            return
        if kind == "http" and scope["method"] == "OPTIONS":
            await self._preflight(send, origin)
            return
        trace = make_trace(_text(headers.get(b"x-request-id")), _text(headers.get(b"traceparent")))
        state = scope.setdefault("state", {})
        state["trace"] = trace
        stamped = self._stamp(send, trace.request_id, origin, state)
        self.open += 1
        try:
            await self._app(scope, receive, stamped)
        except OSError:
            raise  # the client is gone (uvicorn's ClientDisconnected): the server's to close
        except Exception as exc:
            await self._fault(scope, stamped, exc, trace.request_id)
        finally:
            self.open -= 1

    async def _fault(self, scope: Scope, send: Send, exc: Exception, request_id: str) -> None:
        """A fault of cortan's own that no endpoint caught: the client still gets one
        sentence in its API's shape, and the log names the request and the exception.

        Before, Starlette's plain-text ``Internal Server Error`` reached the client with
        no request id, and the log had uvicorn's traceback or nothing (a schema whose
        ``$schema`` was a number did it on every chat endpoint).
        """
        log_fault(request_id, exc)
        self._metrics.rejected("internal")
        if scope["type"] == "websocket":  # accepted or not: closed, "internal error"
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1011, "reason": "internal error"})
            return
        if not scope["state"].get("started"):  # else the server cuts the answer short
            await send_error(send, scope, RequestError(500, "internal", FAULT))

    def _check(self, scope: Scope, headers: dict[bytes, bytes], origin: bytes | None) -> None:
        if sum(name == b"host" for name, _ in scope["headers"]) > 1:
            # A proxy in front may check the first while the door would read the last.
            raise RequestError(400, "bad_request", "the request has more than one Host header")
        if b"transfer-encoding" in headers:
            _check_codings(scope)
        host = _text(headers.get(b"host"))
        if host is None:  # an HTTP/1.0 client may leave it out; the Host check needs it
            raise RequestError(400, "bad_request", "the request has no Host header")
        if not self._hosts.allows(host):
            raise RequestError(
                421, "wrong_host",
                f"the gateway does not answer for host {host[:100]!r}: add it to "
                "serve.allowed_hosts if it is this machine's name",
            )  # fmt: skip
        if origin is not None and origin not in self._origins:
            raise RequestError(
                403, "origin", "requests from this web origin are not allowed "
                "(setting serve.cors_origins names the ones that are)",
            )  # fmt: skip
        if scope.get("method") == "OPTIONS" or scope["path"] in OPEN_PATHS:
            return
        if self._token is not None and not self._authorized(headers, scope):
            # A client that sent a key (the OpenAI SDK's "ollama" placeholder, an old
            # token) was told to send one: say which mistake it made.
            sent = b"authorization" in headers or bool(scope.get("subprotocols"))
            message = (
                "the bearer token sent is not this gateway's" if sent
                else "a bearer token is required: send `Authorization: Bearer <token>`"
            )  # fmt: skip
            raise RequestError(
                401, "auth", f"{message} (`cortan serve --print-token` shows it)",
                {"www-authenticate": 'Bearer realm="cortan"'},
            )  # fmt: skip
        if self.draining and scope["path"] != "/metrics":  # /health says so itself
            raise RequestError(
                503, "stopping", "cortan serve is stopping and takes no new requests",
                {"retry-after": "5", "connection": "close"},
            )  # fmt: skip
        if self.open >= self._max_connections:
            raise RequestError(
                503, "too_many_connections", "the gateway has as many requests and sockets "
                "open as it allows (setting serve.max_connections): try again shortly",
                {"retry-after": "1"},
            )  # fmt: skip

    def _authorized(self, headers: dict[bytes, bytes], scope: Scope) -> bool:
        assert self._token is not None
        sent = headers.get(b"authorization", b"")
        scheme, _, value = sent.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), self._token):
            return True
        # A WebSocket's offered subprotocols: ASGI's list (a server may take the header
        # out of ``headers`` when its handshake parses it, as uvicorn's wsproto does).
        offered = [p.encode() for p in scope.get("subprotocols", ())]
        offered += headers.get(b"sec-websocket-protocol", b"").split(b",")
        for protocol in offered:
            protocol = protocol.strip()
            if protocol.startswith(SUBPROTOCOL_PREFIX.encode()) and hmac.compare_digest(
                protocol[len(SUBPROTOCOL_PREFIX) :], self._token
            ):
                return True
        return False

    async def _refuse(
        self, scope: Scope, send: Send, refused: RequestError, origin: bytes | None
    ) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting: the server answers the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": str(refused)[:120]})
            return
        await send_error(self._stamp(send, None, origin), scope, refused)

    async def _preflight(self, send: Send, origin: bytes | None) -> None:
        headers = [
            (b"access-control-allow-methods", CORS_METHODS),
            (b"access-control-allow-headers", CORS_HEADERS),
            (b"access-control-max-age", b"600"),
            (b"content-length", b"0"),
        ]
        stamped = self._stamp(send, None, origin)
        await stamped({"type": "http.response.start", "status": 204, "headers": headers})
        await stamped({"type": "http.response.body", "body": b""})

    def _stamp(
        self,
        send: Send,
        request_id: str | None,
        origin: bytes | None,
        state: dict[str, Any] | None = None,
    ) -> Send:
        """``send`` that adds the request id and, for an allowed origin, CORS headers;
        with ``state``, it notes there that the response has ``started``."""
        extra: list[tuple[bytes, bytes]] = []
        if request_id is not None:
            extra.append((b"x-request-id", request_id.encode()))
        if origin is not None and origin in self._origins:
            extra += [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
            extra.append((b"access-control-expose-headers", b"x-request-id, retry-after"))
        if not extra and state is None:
            return send

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
                if state is not None:
                    state["started"] = True
            await send(message)

        return stamped


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
