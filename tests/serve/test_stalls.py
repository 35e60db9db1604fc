"""Clients that stop reading their answer: cut off after ``serve.write_timeout`` without progress.

Raw sockets with a small receive buffer stand for a client that asks and then reads
nothing: the answer fills the kernel's buffers and the gateway's transport (some 3 MB
on loopback, so the fake upstream's answers are many megabytes, and
``max_output_bytes`` is raised to let them through). The gateway must then give up
on the client as if it had gone: the upstream request cancelled, its stream slot
free, the partial answer stored as interrupted, the cut counted and logged once, the
connection closed. A client that reads slowly but keeps reading must not be cut.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.serve.conftest import TOKEN, Running
from tests.serve.test_hostile import no_errors_logged, post
from tests.servers import FakeOllama, Reply

__all__ = ["no_errors_logged"]  # the autouse fixture, for this module too

MODEL = "ollama:llama3.2:latest"
PIECE = "x" * 16384
#: An answer that does not end by itself: whatever of its 32 MB the buffers between the
#: fake and the gateway take (they grow to tens of MB), it waits to be cancelled.
ENDLESS = Reply(pieces=[PIECE] * 2000, fault="never_end", fault_after=2000)
SECONDS = 0.5  # serve.write_timeout in these tests
#: For tests whose client reads on after the cut, or slowly: on a busy machine it may be
#: late by more than half a second, and a cut it did not earn would fail the test.
LENIENT = 1.0
TCP_CLOSE = 7  # tcpi_state of a socket whose peer reset it (linux/tcp_states.h)
#: TCP_INFO tells a reset; and elsewhere the gateway counts progress more coarsely.
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="Linux's TCP_INFO, SIOCOUTQ")


@pytest.fixture(autouse=True)
def big_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers of many megabytes, past the 4 MiB an answer may have by default."""
    monkeypatch.setenv("CORTAN_MAX_OUTPUT_BYTES", str(256 << 20))


def raw_client(running: Running, request: bytes) -> socket.socket:
    """A socket with a 4 KiB receive buffer that has sent ``request`` (and read nothing)."""
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(request)
    return sock


def chat_body(*, stream: bool) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return json.dumps(body).encode()


def metrics(running: Running) -> str:
    return httpx.get(running.url + "/metrics", headers=running.headers).text


def slot_is_free(running: Running) -> bool:
    return 'cortan_serve_streams{provider="ollama"} 0.0' in metrics(running)


def cut_off(running: Running) -> bool:
    return 'cortan_serve_errors_total{kind="write_timeout"} 1.0' in metrics(running)


def reset_by_the_gateway(sock: socket.socket) -> bool:
    """True once the gateway aborted the connection (the client's side saw its reset)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE


@pytest.fixture(autouse=True)
def access_lines(no_errors_logged: None, caplog: pytest.LogCaptureFixture) -> None:
    """The gateway's lines, as ``cortan serve`` writes them on stderr (errors still fail)."""
    caplog.set_level(logging.INFO, logger="cortan.serve.access")


def stall_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "write_timeout request_id=" in r.getMessage()]


def assert_served_once_more(running: Running, ollama: FakeOllama) -> None:
    """The one stream slot (``streams_per_host=1``, no queue) answers the next request."""
    ollama.queue(Reply())
    body = {"model": MODEL, "messages": [{"role": "user", "content": "again"}]}
    reply = httpx.post(
        running.url + "/v1/chat/completions", json=body, headers=running.headers, timeout=10
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "Hello, world!"


def assert_stored_interrupted(running: Running, request_id: str) -> None:
    """The partial answer is kept, as a disconnect keeps it, under the request's id."""
    assert wait_until(lambda: len(running.messages(1)) == 2, 10), "the answer was not stored"
    (conversation,) = [c for c in running.conversations() if c.id == 1]
    assert conversation.request_id == request_id
    _, answer = running.messages(1)
    assert answer.status == "interrupted"
    assert len(answer.content) >= len(PIECE) and set(answer.content) == {"x"}


def gateway_for_stalls(factory: Any, seconds: float = SECONDS) -> Running:
    running: Running = factory(write_timeout=seconds, streams_per_host=1, queue_per_host=0)
    return running


# -- streamed answers -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/api/chat"])
@linux_only
def test_a_stream_nobody_reads_is_cut_off_after_write_timeout(
    gateway_factory: Any,
    ollama_env: FakeOllama,
    caplog: pytest.LogCaptureFixture,
    path: bytes,
) -> None:
    """Before, it held its upstream request and its stream slot until timeouts.total."""
    running = gateway_for_stalls(gateway_factory)
    ollama_env.queue(ENDLESS)
    request = post(chat_body(stream=True), path, b"X-Request-ID: stalled-1\r\n")
    with closing(raw_client(running, request)) as sock:
        began = time.monotonic()
        assert ollama_env.wait_disconnect(timeout=20), metrics(running)  # upstream cancelled
        assert wait_until(lambda: slot_is_free(running), 5), "the stream slot was kept"
        assert_served_once_more(running, ollama_env)
        assert_stored_interrupted(running, "stalled-1")
        assert cut_off(running)
        (line,) = stall_lines(caplog)
        assert "request_id=stalled-1" in line and "read nothing for 0.5 s" in line
        # It read nothing of what was left either: after as long again, the connection is reset.
        assert wait_until(lambda: reset_by_the_gateway(sock), 10), "the connection was kept"
    assert time.monotonic() - began < 30


# -- a whole answer ---------------------------------------------------------------------------


@linux_only
def test_a_whole_answer_nobody_reads_does_not_hold_its_connection(
    gateway_factory: Any, ollama_env: FakeOllama
) -> None:
    """Written in one piece, it had no send to wait on: the connection stayed for ever."""
    running = gateway_for_stalls(gateway_factory)
    ollama_env.queue(Reply(pieces=[PIECE] * 400))  # 6.5 MB, past the kernel's buffers
    path = b"/v1/chat/completions"
    with closing(raw_client(running, post(chat_body(stream=False), path))) as sock:
        assert wait_until(lambda: reset_by_the_gateway(sock), 20), "the connection was kept"
        assert cut_off(running)
    _, answer = running.messages(1)
    assert answer.status == "complete"  # the answer was whole; only its delivery was cut


# -- the WebSocket ------------------------------------------------------------------------------


def ws_frame(text: str) -> bytes:
    """A masked text frame, as clients send them (a zero mask leaves the payload as it is)."""
    data = text.encode()
    assert len(data) < 126
    return bytes([0x81, 0x80 | len(data)]) + b"\0\0\0\0" + data


def ws_frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Opcode and payload of each whole frame the server sent (unmasked)."""
    at = 0
    while at + 2 <= len(data):
        opcode, size = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if size >= 126:
            width = 2 if size == 126 else 8
            size, at = int.from_bytes(data[at : at + width]), at + width
        yield opcode, data[at : at + size]
        at += size


def read_to_the_end(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


@linux_only
def test_a_websocket_nobody_reads_is_closed_with_1008(
    gateway_factory: Any, ollama_env: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    running = gateway_for_stalls(gateway_factory, LENIENT)
    ollama_env.queue(ENDLESS)
    key = base64.b64encode(os.urandom(16))
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"X-Request-ID: socket-1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    )  # fmt: skip
    with closing(raw_client(running, handshake)) as sock:
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert b" 101 " in head
        sock.sendall(ws_frame(json.dumps({"type": "chat", "id": "c1", "prompt": "hi"})))
        assert ollama_env.wait_disconnect(timeout=20), metrics(running)  # upstream cancelled
        # A client that reads on gets what the socket held, then the close frame saying why.
        frames = list(ws_frames(read_to_the_end(sock)))
    assert frames[-1][0] == 0x8, "no close frame at the end"
    code, reason = int.from_bytes(frames[-1][1][:2]), frames[-1][1][2:].decode()
    assert code == 1008 and reason == "the client read nothing for 1 s (serve.write_timeout)"
    assert not any(json.loads(p)["type"] == "end" for op, p in frames if op == 0x1)
    assert wait_until(lambda: slot_is_free(running), 5), "the stream slot was kept"
    assert_served_once_more(running, ollama_env)
    assert_stored_interrupted(running, "socket-1.1")
    assert cut_off(running)
    (line,) = stall_lines(caplog)
    assert line.startswith("websocket write_timeout request_id=socket-1 ")


# -- a client that reads slowly --------------------------------------------------------------


@linux_only
def test_a_client_that_reads_slowly_but_steadily_is_not_cut_off(
    gateway_factory: Any, ollama_env: FakeOllama
) -> None:
    """Progress, not time, is what counts: some 6 KiB every 0.1 s for twice write_timeout.

    (6 KiB is what its small receive buffer holds.) The kernel lets the gateway write
    again only once a third of its send queue (some 3 MB here) has gone: counted by the
    gateway's own buffer alone, this client made no progress for seconds at a time and
    was cut off.
    """
    running = gateway_for_stalls(gateway_factory, LENIENT)
    ollama_env.queue(Reply(pieces=[PIECE] * 400))  # 6.5 MB
    path = b"/v1/chat/completions"
    request = post(chat_body(stream=True), path, b"Connection: close\r\n")
    with closing(raw_client(running, request)) as sock:
        time.sleep(SECONDS / 2)  # the buffers fill; the gateway's writes pause
        received = []
        slow_until = time.monotonic() + 2 * LENIENT
        while time.monotonic() < slow_until:
            received.append(sock.recv(65536))
            time.sleep(0.1)
        received.append(read_to_the_end(sock))
    answer = b"".join(received)
    assert answer.endswith(b"0\r\n\r\n") and b"data: [DONE]" in answer[-100:]
    assert answer.count(PIECE.encode()) == 400
    assert "write_timeout" not in metrics(running)
    assert running.messages(1)[1].status == "complete"
