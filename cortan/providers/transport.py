"""aiohttp under the providers' httpx clients, for a process that sends many requests at once.

Layer: providers. ``cortan serve`` proxies hundreds of small requests a second; in its
profile, the default transport of the SDKs' clients (httpcore, anyio and h11, all
pure Python) was half the gateway's CPU per request. aiohttp parses HTTP in C and
pools connections with less bookkeeping: as the transport of the same httpx client,
the gateway's CPU per request fell to 0.6x (docs/performance.md). The SDKs keep
their own API, and cortan's bounds and redirect rule (:mod:`cortan.providers.responses`)
see the same raw bytes: aiohttp neither follows redirects nor decompresses here.

The OpenAI SDK offers the same (``openai[aiohttp]``, a vendored copy of the
httpx-aiohttp package) but maps aiohttp's errors coarsely: a refused connection and a
server that closes mid-answer both become ``ConnectTimeout``, which the user would
read as "did not answer in time". :func:`_mapped` gives each the httpx error the
providers' ``map_error`` turns into the right sentence, and the adapter is written
once for both httpx lines (``httpx``, Ollama's provider's; ``httpx2``, OpenAI's SDK's).

``cortan batch`` runs on it too: httpx's own pool holds 100 connections and queues the
rest, and each request that joins or leaves that queue scans it against every
connection, so a batch with ``parallel = 1024`` never had more than 100 requests in
flight, ran 7.6x slower, and took ~48 s to stop on SIGTERM (0.2 s on aiohttp).
``cortan ask`` keeps the default transport: one request does not repay importing
aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    import httpx

CHUNK = 64 << 10
#: Seconds an idle upstream connection is kept for the next request (aiohttp's default).
KEEPALIVE = 15.0


class AiohttpTransport:
    """An httpx transport (``http`` is the httpx module the client is from) on aiohttp.

    Duck-typed, as both httpx lines call only these methods. Connections are not
    counted here: the engine's host lanes (``parallel``) bound what is in flight.
    """

    def __init__(self, http: ModuleType, *, verify: ssl.SSLContext | bool) -> None:
        self._http = http
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # made on first use: a ClientSession belongs to the running event loop
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE, ssl=self._verify)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # httpx mounts its own transports for proxies from the env
                auto_decompress=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        http = self._http
        body = await request.aread()
        timeout = request.extensions.get("timeout", {})
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"]
        try:
            response = await self._get_session().request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(http, exc, request) from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        result: httpx.Response = http.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_body_type(http)(http, response, request),
            request=request,
            extensions=extensions,
        )
        return result

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> AiohttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Body:
    """A response body, read as it comes; closing it early drops the connection."""

    def __init__(
        self, http: ModuleType, response: aiohttp.ClientResponse, request: httpx.Request
    ) -> None:
        self._http = http
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(self._http, exc, self._request) from exc

    async def aclose(self) -> None:
        # An answer read to its end hands the connection back for the next request;
        # one left half-read (a client gone, Ctrl-C) closes it, so the upstream
        # server sees at once that nobody is reading (issue 20: disconnect to cancel).
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()
            await asyncio.sleep(0)  # the socket closes in the loop's next turn: let it


def keep_no_cookies(client: Any, http: ModuleType) -> None:
    """Have ``client`` (of ``http``'s line) keep no cookie from any response.

    The gateway and ``cortan batch`` send everyone's requests through one client: a
    cookie an upstream set on one answer rode on every later request, whoever it was
    for (and behind a sticky load balancer, pinned them all to one backend). aiohttp
    underneath keeps none already (``DummyCookieJar``). httpx also wrapped every
    response in urllib's cookie shims to look for one: in a cProfile of the gateway,
    121 µs of its 1,930 per request (0.06x), for nothing. httpx offers no switch, so
    its jar is replaced by one of the same type that takes nothing.
    """
    client._cookies = _no_cookies_type(http)()


_NO_COOKIES_TYPES: dict[str, type[Any]] = {}


def _no_cookies_type(http: ModuleType) -> type[Any]:
    made = _NO_COOKIES_TYPES.get(http.__name__)
    if made is None:

        def extract_cookies(self: object, response: object) -> None:
            return None

        made = type("NoCookies", (http.Cookies,), {"extract_cookies": extract_cookies})
        _NO_COOKIES_TYPES[http.__name__] = made
    return made


_BODY_TYPES: dict[str, type[_Body]] = {}


def _body_type(http: ModuleType) -> type[_Body]:
    """:class:`_Body` as ``http``'s AsyncByteStream, which its client asserts a body is."""
    made = _BODY_TYPES.get(http.__name__)
    if made is None:
        made = _BODY_TYPES[http.__name__] = type("Body", (_Body, http.AsyncByteStream), {})
    return made


def _mapped(http: ModuleType, exc: BaseException, request: httpx.Request) -> Exception:
    """The httpx error (of ``http``'s line) that says what happened to ``request``."""
    message = str(exc) or type(exc).__name__
    kind: Any
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = http.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        kind = http.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS (chained)
        kind = http.ConnectError
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        kind = http.RemoteProtocolError  # closed mid-answer, or not HTTP
    elif isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        kind = http.ReadError
    elif isinstance(exc, aiohttp.InvalidURL):
        kind = http.UnsupportedProtocol
    else:
        kind = http.NetworkError
    error: Exception = kind(message, request=request)
    return error
