"""Hostile WebSocket clients: bad frames and messages get an error event, the socket lives on.

What a message the gateway cannot take gets is documented (docs/serve.md): an
``error`` event with a kind and one sentence; a hostile one must not end the session
in silence nor raise in the gateway (the log is checked, as in test_hostile.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from contextlib import closing
from typing import Any

import pytest
import websockets

from tests.serve.conftest import TOKEN, Running
from tests.serve.test_hostile import no_errors_logged

__all__ = ["no_errors_logged"]  # the autouse fixture, for this module too

CHAT = {"type": "chat", "id": "after", "prompt": "hi"}


def url_of(running: Running) -> str:
    return "ws" + running.url.removeprefix("http") + "/ws"


def exchange(running: Running, hostile: str | bytes) -> tuple[dict[str, Any], list[Any]]:
    """The reply to ``hostile``, then the events of an ordinary chat on the same socket."""

    async def main() -> tuple[dict[str, Any], list[Any]]:
        async with websockets.connect(url_of(running), additional_headers=running.headers) as ws:
            await ws.send(hostile)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps(CHAT))
            events: list[Any] = []
            while not events or events[-1]["type"] != "end":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return reply, events

    return asyncio.run(main())


def test_a_message_nested_too_deeply_is_an_error_event(gateway: Running) -> None:
    """RecursionError is a RuntimeError: the socket used to end in silence, chats and all."""
    reply, events = exchange(gateway, "[" * 100_000 + "]" * 100_000)
    assert reply == {"type": "error", "id": None, "kind": "bad_json",
                     "message": "the message is JSON nested too deeply"}  # fmt: skip
    assert events[-1]["status"] == "finished"


def test_a_binary_frame_is_an_error_event(gateway: Running) -> None:
    """A binary frame used to end the session without a close frame or a word."""
    reply, events = exchange(gateway, json.dumps(CHAT | {"id": "binary"}).encode())
    assert reply["type"] == "error" and reply["kind"] == "bad_message"
    assert "text frames" in reply["message"]
    assert events[-1]["status"] == "finished"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**30])
def test_an_option_no_upstream_can_read_is_an_error_event(gateway: Running, value: float) -> None:
    chat = CHAT | {"id": "n", "options": {"temperature": value}}
    reply, events = exchange(gateway, json.dumps(chat))
    assert reply["type"] == "error" and reply["kind"] == "bad_request"
    assert "finite number" in reply["message"]
    assert events[-1]["status"] == "finished"


def test_a_message_over_max_body_bytes_closes_with_1009(
    gateway_factory: Any, ollama_env: object
) -> None:
    """uvicorn's ws_max_size is serve.max_body_bytes, counted over a fragmented message too."""
    running: Running = gateway_factory(max_body_bytes=64 << 10)

    async def main() -> int | None:
        async with websockets.connect(url_of(running), additional_headers=running.headers) as ws:

            async def fragments() -> Any:
                for _ in range(5):  # the fifth goes over: nothing is sent after it
                    yield "x" * (16 << 10)

            await ws.send(fragments())
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd is not None else None

    assert asyncio.run(main()) == 1009


@pytest.mark.parametrize(
    ("headers", "protocols"),
    [
        ({}, ["cortan", "bearer.wrong-token-0123456789"]),
        ({"Authorization": "Bearer wrong-token-0123456789"}, ["cortan"]),
        ({"Authorization": f"Bearer {TOKEN}", "Origin": "https://evil.example"}, []),
        ({"Origin": "https://evil.example"}, ["cortan", f"bearer.{TOKEN}"]),
        ({"Origin": "null"}, ["cortan", f"bearer.{TOKEN}"]),
    ],
)
def test_a_handshake_without_the_token_or_from_a_web_page_is_403(
    gateway: Running, headers: dict[str, str], protocols: list[str]
) -> None:
    """Cross-site WebSocket hijacking: a page elsewhere, even holding the token, is refused."""

    async def main() -> None:
        offered = [websockets.Subprotocol(p) for p in protocols] or None
        async with websockets.connect(
            url_of(gateway), additional_headers=headers, subprotocols=offered
        ):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        asyncio.run(main())
    assert caught.value.response.status_code == 403


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc")
def test_a_ping_flood_from_a_client_that_never_reads_is_not_buffered(gateway: Running) -> None:
    """uvicorn wrote a pong per ping whatever its buffer held: 350 MB in 20 s, before."""
    host, port = gateway.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
    with closing(sock):
        sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16))
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
        )  # fmt: skip
        handshake = b""
        while b"\r\n\r\n" not in handshake:
            handshake += sock.recv(1)
        assert b" 101 " in handshake
        pings = (bytes([0x89, 0x80 | 125]) + b"\0\0\0\0" + b"p" * 125) * 8000  # 1 MiB, masked
        before, began, sent = rss_mib(), time.monotonic(), 0
        sock.settimeout(1)
        with contextlib.suppress(TimeoutError):  # the gateway stopped reading: also fine
            while time.monotonic() - began < 4:
                sock.sendall(pings)
                sent += len(pings)
        grown = rss_mib() - before
    assert sent > 8 << 20, "too few pings were sent to tell"
    assert grown < 16, f"the gateway grew {grown:.0f} MiB for {sent >> 20} MiB of pings"


def test_a_chat_id_of_a_huge_number_is_refused_like_a_long_string(gateway: Running) -> None:
    # Before: an integer id was taken whatever its length (400 digits past the 100 characters).
    async def main() -> dict[str, Any]:
        url = "ws" + gateway.url.removeprefix("http") + "/ws"
        async with websockets.connect(url, additional_headers=gateway.headers) as ws:
            await ws.send('{"type": "chat", "prompt": "hi", "id": ' + "9" * 400 + "}")
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return answer

    event = asyncio.run(main())
    assert event["type"] == "error" and "needs an `id`" in event["message"]


def test_a_message_refused_whole_is_answered_under_its_chats_id(gateway: Running) -> None:
    # Before: the error of a chat refused for a lone surrogate in its prompt said id null,
    # so a client waiting on that chat never learnt it had ended.
    async def main() -> dict[str, Any]:
        url = "ws" + gateway.url.removeprefix("http") + "/ws"
        async with websockets.connect(url, additional_headers=gateway.headers) as ws:
            await ws.send('{"type": "chat", "id": "c7", "prompt": "hi \\udc01"}')
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return answer

    event = asyncio.run(main())
    assert (event["type"], event["id"]) == ("error", "c7")
    assert "lone surrogate" in event["message"]
