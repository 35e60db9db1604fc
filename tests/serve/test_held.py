"""What a gateway left running for days holds: nothing per request once it has ended.

An editor or a script sends thousands of requests a day, cancels many, drops
connections, names models and itself as it likes. Whatever the gateway keeps per
connection, chat or client must go when they do, or be bounded: each test here
makes many of one kind of request and counts what is left in the gateway's process
(it serves in a thread of the test's own, so its objects are the test's to count).
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import struct
import time
import tracemalloc
from collections.abc import Callable
from contextlib import closing
from typing import Any

import httpx
import websockets

from cortan.core.recent import MODELS_KEPT
from tests.conftest import CortanRunner
from tests.serve.conftest import Running
from tests.serve.test_connections import connect, exchange
from tests.serve.test_hostile_ws import CHAT, url_of


def count_alive(type_name: str) -> int:
    """How many objects of the class named ``type_name`` the process still holds."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == type_name)


def settles(count: Callable[[], int], at_most: int, seconds: float = 5.0) -> int:
    """``count()`` once it is ``at_most`` or less, or its last value after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (value := count()) > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset, as a client that gives up on a connection does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_connection_its_client_resets_is_let_go_at_once(gateway: Running) -> None:
    # uvicorn left the idle timer of a reset connection armed for serve.keep_alive
    # (120 s), holding its protocol, request and answer that long: an editor that
    # cancels by dropping its connection piled up thousands of them.
    before = count_alive("BoundedHttpToolsProtocol")
    for _ in range(50):
        sock = connect(gateway)
        assert exchange(sock) == 200
        reset(sock)
    with closing(connect(gateway)) as sock:  # the gateway has seen the resets by now
        assert exchange(sock) == 200
    assert settles(lambda: count_alive("BoundedHttpToolsProtocol"), before + 1) <= before + 1


def test_a_chat_cancelled_as_it_is_sent_ends_and_frees_its_place(gateway: Running) -> None:
    # A cancel read before the chat's task first ran cancelled a task that never began:
    # no `end` came, its id stayed taken, its upstream request ran on, and after
    # serve.chats_per_socket (8) such chats the socket refused every other.
    async def main() -> tuple[list[str], dict[str, Any]]:
        async with websockets.connect(url_of(gateway), additional_headers=gateway.headers) as ws:
            for n in range(10):
                await ws.send(json.dumps({"type": "chat", "id": f"c{n}", "prompt": "hi"}))
                await ws.send(json.dumps({"type": "cancel", "id": f"c{n}"}))
            ends: list[str] = []
            while len(ends) < 10:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert event["type"] != "error", event
                if event["type"] == "end":
                    ends.append(event["id"])
            await ws.send(json.dumps({**CHAT, "id": "c0"}))  # the id is free again
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "end":
                pass
            return ends, event

    ends, last = asyncio.run(main())
    assert sorted(ends) == sorted(f"c{n}" for n in range(10))
    assert last["id"] == "c0" and last["status"] == "finished"


def test_made_up_model_names_do_not_grow_the_gateway(openai_env: Any, gateway: Running) -> None:
    # Each name a client sent was remembered for the process's life: what its server
    # said of it (an OpenAI-compatible server says nothing, and that was kept too), the
    # window sized for it, how its tokens count. 10,000 made-up names, 10,000 entries a
    # table; each table now keeps the last MODELS_KEPT (cortan/core/recent.py).
    names = MODELS_KEPT + 500
    with httpx.Client(base_url=gateway.url, headers=gateway.headers, timeout=30) as client:
        for n in range(names):
            body = {"model": f"openai:made-up-{n}", "messages": [{"role": "user", "content": "hi"}]}
            assert client.post("/v1/chat/completions", json=body).status_code == 404
    assert count_alive("ModelInfo") <= MODELS_KEPT + 50


def test_cortan_logs_beside_a_running_gateway_leaves_its_store_alone(
    gateway: Running, cortan: type[CortanRunner]
) -> None:
    # The store was opened by plain os.open/os.close for its checks on each new
    # connection: closing any descriptor of a file drops every POSIX lock the process
    # holds on it, SQLite's included. The gateway's second connection left it holding
    # none, so the next `cortan logs` took itself for the store's last user and deleted
    # the gateway's live -wal and -shm: what the gateway wrote afterwards went to a
    # deleted file no other process could read (and two WALs can corrupt the store).
    assert gateway.data_dir is not None

    def ask(question: str) -> dict[str, Any]:
        return {"model": "", "messages": [{"role": "user", "content": question}]}

    with httpx.Client(base_url=gateway.url, headers=gateway.headers, timeout=30) as client:
        assert client.post("/v1/chat/completions", json=ask("first")).status_code == 200
        gateway.commit()
        wal = gateway.data_dir / "cortan.db-wal"
        assert wal.exists()
        assert cortan.run("logs", "-n", "5").code == 0
        assert wal.exists(), "cortan logs deleted the running gateway's write-ahead log"
        second = ask("second question")
        assert client.post("/v1/chat/completions", json=second).status_code == 200
        gateway.commit()
    assert "second question" in cortan.run("logs", "-n", "5").stdout


def test_long_messages_are_not_held_once_answered(gateway: Running) -> None:
    # Token counts were remembered with their text, the last 1,024 messages whole:
    # 100 distinct 1 MB messages held 100 MB for the gateway's life.
    def send(client: httpx.Client, n: int) -> None:
        text = f"{n} " + "word " * 200_000  # 1 MB, each one different
        body = {"model": "", "messages": [{"role": "user", "content": text}]}
        assert client.post("/v1/chat/completions", json=body).status_code in (200, 400)

    with httpx.Client(base_url=gateway.url, headers=gateway.headers, timeout=60) as client:
        send(client, 0)  # warm: what the first request loads is not what is held
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(1, 25):
                send(client, n)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held < 8 << 20, f"24 messages of 1 MB left {held >> 20} MB held"
