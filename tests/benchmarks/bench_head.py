"""What bounding the request head costs (cortan/serve/protocol.py): server CPU per request.

Two uvicorn servers in processes of their own, the same trivial ASGI application
behind each (so only the protocol differs): uvicorn's own ``httptools`` protocol, the
baseline, and cortan's :class:`BoundedHttpToolsProtocol`. Each is sent the same
requests in interleaved rounds, from raw sockets:

* ``keep-alive``: many small requests on a few kept connections (what SDK clients do);
* ``new connection``: one request per connection (the idle timer armed on connect);
* ``2-read heads``: each head sent in two writes a moment apart, so every request arms
  and stops the head's timer.

The figure is the server's CPU time (user + system, from /proc) per request, cortan's
against uvicorn's in the same round; the median ratio over the rounds is reported.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from tests.benchmarks.measure import Figure, report

REQUEST = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
REPLY_END = b"ok"

SERVER = r"""
import asyncio, socket, sys, uvicorn
from cortan.serve.protocol import MAX_HEAD_BYTES, make_protocol

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

bounded = sys.argv[1] == "bounded"
http = make_protocol(max_head_bytes=MAX_HEAD_BYTES, head_timeout=30) if bounded else "httptools"
sock = socket.socket(); sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.bind(("127.0.0.1", 0)); sock.listen(1024)  # as cortan.serve.server.bind
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config(app, http=http, lifespan="off", access_log=False, log_config=None,
                        loop="uvloop", timeout_keep_alive=120)
asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def _read_reply(sock: socket.socket) -> None:
    data = b""
    while not data.endswith(REPLY_END):
        more = sock.recv(4096)
        if not more:
            raise ConnectionError("the server closed the connection")
        data += more


def keep_alive(port: int, count: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for index in range(count):
        sock = socks[index % 4]
        sock.sendall(REQUEST)
        _read_reply(sock)
    for sock in socks:
        sock.close()


def new_connections(port: int, count: int) -> None:
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(REQUEST)
            _read_reply(sock)


def split_heads(port: int, count: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            sock.sendall(REQUEST[:20])
            time.sleep(0.0002)
            sock.sendall(REQUEST[20:])
            _read_reply(sock)


WORKLOADS = {
    "keep-alive": keep_alive,
    "new connection": new_connections,
    "2-read heads": split_heads,
}


def main(rounds: int = 7, count: int = 10_000) -> dict[str, Any]:
    servers = {
        kind: subprocess.Popen(
            [sys.executable, "-c", SERVER, kind], stdout=subprocess.PIPE, text=True
        )
        for kind in ("plain", "bounded")
    }
    try:
        ports = {kind: int(proc.stdout.readline()) for kind, proc in servers.items()}  # type: ignore[union-attr]
        figures = []
        for name, workload in WORKLOADS.items():
            per_request: dict[str, list[float]] = {"plain": [], "bounded": []}
            for round_ in range(rounds):
                order = ("plain", "bounded") if round_ % 2 == 0 else ("bounded", "plain")
                for kind in order:
                    pid = servers[kind].pid
                    before = cpu_seconds(pid)
                    workload(ports[kind], count)
                    per_request[kind].append((cpu_seconds(pid) - before) / count)
            pairs = zip(per_request["bounded"], per_request["plain"], strict=True)
            ratios = [bounded / plain for bounded, plain in pairs if plain]
            plain = statistics.median(per_request["plain"]) * 1e6
            figures.append(
                Figure(
                    f"server CPU per request, {name}",
                    plain * statistics.median(ratios),
                    "µs",
                    baseline=plain,
                    baseline_name="uvicorn's httptools protocol",
                    target=1.10,
                )
            )
        return report("the bounded request head (bench_head)", figures)
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
