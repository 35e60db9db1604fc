"""The least a gateway on cortan's stack can be: the floor ``bench_serve`` measures beside it.

uvicorn with httptools and uvloop, as ``cortan serve`` runs it, one Starlette route that
reads a client's ``/api/chat`` body and relays it to one upstream through one pooled
aiohttp session (the transport the gateway's clients send through), whole or streamed as
the body asks. No token, Host check, limits, engine, routing, store or metrics: whatever
this costs a request, any gateway built on uvicorn and Starlette costs at least as much,
so its added latency on a machine is that stack's floor there, and cortan's figures are
read against it as well as against going direct.

``python -m tests.benchmarks.floor_proxy UPSTREAM_URL`` prints ``listening on URL`` on
stderr once it serves.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(upstream: str) -> Starlette:
    state: dict[str, aiohttp.ClientSession] = {}

    async def chat(request: Request) -> Response:
        body = await request.body()
        stream = bool(json.loads(body).get("stream", True))
        session = state.get("session")
        if session is None:
            session = state["session"] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0)
            )
        reply = await session.post(upstream + "/api/chat", data=body,
                                   headers={"Content-Type": "application/json"})  # fmt: skip
        if not stream:
            async with reply:
                return Response(await reply.read(), reply.status,
                                media_type="application/json")  # fmt: skip

        async def relay() -> AsyncIterator[bytes]:
            async with reply:
                async for line in reply.content:
                    yield line

        return StreamingResponse(relay(), reply.status, media_type="application/x-ndjson")

    return Starlette(routes=[Route("/api/chat", chat, methods=["POST"])])


def main(argv: list[str]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    host, port = sock.getsockname()
    config: dict[str, Any] = {"http": "httptools", "loop": "uvloop", "access_log": False,
                              "log_level": "warning", "lifespan": "off"}  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(build(argv[0].rstrip("/")), **config))
    print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
