"""Keep-alive: the gateway must not close an idle connection that its client would still reuse.

A client keeps an idle connection in its pool for a while (httpx, under the OpenAI and
Ollama libraries: 5 s) and sends its next request on it without asking. If the gateway
closes the connection at the same moment, the request crosses the close and fails
(``httpx.ReadError``, or "Server disconnected without sending a response"): so the
gateway keeps idle connections longer than its clients do, and the client always goes
first. Raw sockets here, so that nothing between the test and the gateway reconnects.
"""

from __future__ import annotations

import select
import socket
from contextlib import closing

import httpx
import pytest

from tests.conftest import CortanRunner, assert_one_sentence
from tests.serve.conftest import Running

#: How long httpx (so the OpenAI and Ollama libraries) reuses an idle connection.
HTTPX_KEEPALIVE = httpx.Limits(max_connections=None).keepalive_expiry or 0.0
REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def connect(running: Running) -> socket.socket:
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def exchange(sock: socket.socket) -> int:
    """Send one request on ``sock``, read the whole response, return its status."""
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, "the gateway closed the connection instead of answering"
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                  if k.strip().lower() == "content-length")  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1])


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Wait up to ``seconds`` for the gateway to close ``sock``: True if it did."""
    readable, _, _ = select.select([sock], [], [], seconds)
    return bool(readable) and sock.recv(1) == b""


def test_an_idle_connection_outlives_the_clients_pool(gateway: Running) -> None:
    assert HTTPX_KEEPALIVE > 0
    with closing(connect(gateway)) as sock:
        assert exchange(sock) == 200
        assert not closed_within(sock, HTTPX_KEEPALIVE + 0.5), (
            "the gateway closed an idle connection while httpx would still reuse it"
        )
        assert exchange(sock) == 200


def test_idle_connections_are_still_closed_after_serve_keep_alive(
    gateway_factory: object, ollama_env: object
) -> None:
    running: Running = gateway_factory(keep_alive=0.2)  # type: ignore[operator]
    with closing(connect(running)) as sock:
        assert exchange(sock) == 200
        assert closed_within(sock, 3)  # well before uvicorn's own default, 5 s


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "1e9"])
def test_a_bad_serve_keep_alive_is_one_sentence(cortan: type[CortanRunner], value: str) -> None:
    env = {"CORTAN_SERVE_TOKEN": "cli-token-0123456789abcdef", "CORTAN_SERVE__KEEP_ALIVE": value}
    done = cortan.run("serve", "--port", "0", env=env)
    assert done.code == 2
    assert_one_sentence(done.stderr)
    assert "CORTAN_SERVE__KEEP_ALIVE" in done.stderr
