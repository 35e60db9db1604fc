"""A small MCP server for the tests, on the official SDK's own server side (MCPServer).

``python -m tests.servers.mcp_server`` serves on stdio; ``--http`` serves streamable
HTTP on 127.0.0.1 (through uvicorn, on a socket bound first) and prints its URL on
the first line of stdout. ``--hang``
never answers the handshake (a server that hangs); ``--crash`` exits at once.
Tools: ``echo`` (says its text back), ``add`` (two integers), ``fail`` (an error
result), ``pid`` (the server's process id, so a test can see it stopped).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def make_server() -> object:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("cortan-test")

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return f"echo: {text}"

    @server.tool()
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return str(a + b)

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails, with the reason given."""
        raise ValueError(reason)

    @server.tool()
    def pid() -> str:
        """The server's process id."""
        return str(os.getpid())

    return server


def serve_http(server: object) -> None:
    import asyncio
    import socket

    import uvicorn

    app = server.streamable_http_app()  # type: ignore[attr-defined]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # listening before the URL is printed: a client never finds it closed
    port = sock.getsockname()[1]
    sock.set_inheritable(True)
    config = uvicorn.Config(app, access_log=False, log_level="warning", lifespan="on")
    print(f"http://127.0.0.1:{port}/mcp", flush=True)
    # uvicorn runs the app's lifespan (the SDK's session manager) itself
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--crash", action="store_true")
    args = parser.parse_args()
    if args.crash:
        print("the test server was told to crash", file=sys.stderr)
        return 3
    if args.hang:
        while True:
            time.sleep(60)
    server = make_server()
    if args.http:
        serve_http(server)
    else:
        server.run("stdio")  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
