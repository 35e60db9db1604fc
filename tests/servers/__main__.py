"""Run one fake server in the foreground: `python -m tests.servers ollama|openai`.

For pointing a real cortan at a scripted backend by hand (e.g. in tmux) and
for benchmarks that spawn a server process.  The URL is the first stdout line;
requests are logged to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from tests.servers.http import FakeServer, Reply
from tests.servers.ollama import FakeOllama
from tests.servers.openai import FakeOpenAI


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _make_server(args: argparse.Namespace) -> FakeServer:
    if args.kind == "openai":
        openai = FakeOpenAI(port=args.port)
        openai.api_key = args.api_key
        openai.context_size = args.context_size
        openai.overflow_style = args.overflow_style
        return openai
    ollama = FakeOllama(port=args.port)
    for given in args.capabilities or []:
        model, _, listed = given.partition("=")
        ollama.capabilities[model] = [c for c in listed.split(",") if c]
    return ollama


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers", description=__doc__)
    parser.add_argument("kind", choices=["ollama", "openai"])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between pieces")
    parser.add_argument("--first-byte-delay", type=float, default=0.0)
    parser.add_argument("--pieces-file", type=Path, help="stream this text in ~4-char pieces")
    parser.add_argument("--thinking-file", type=Path, help="reason with this text first")
    parser.add_argument("--model", action="append", help="served model (repeatable)")
    parser.add_argument("--api-key", help="openai: require this Bearer key")
    parser.add_argument(
        "--max-parallel", type=int, help="answer this many chats at once; the rest wait"
    )
    parser.add_argument(
        "--context-size",
        type=int,
        help="openai: refuse a prompt of this many tokens or more, as llama.cpp's -c does",
    )
    parser.add_argument(
        "--overflow-style",
        choices=["status", "sse", "text"],
        default="status",
        help="openai: how a too-long prompt is refused (HTTP 400, an SSE error: line, 500)",
    )
    parser.add_argument(
        "--capabilities",
        action="append",
        metavar="MODEL=CAP,CAP",
        help="ollama: what /api/show says MODEL can do (repeatable; thinking refused without)",
    )
    parser.add_argument("--quiet", action="store_true", help="neither log nor keep requests")
    args = parser.parse_args(argv)

    server = _make_server(args)
    if args.model:
        server.models = list(args.model)
    server.max_parallel = args.max_parallel
    server.record = not args.quiet
    pieces = Reply().pieces
    if args.pieces_file is not None:
        text = args.pieces_file.read_text(encoding="utf-8")
        pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    thinking: list[str] = []
    if args.thinking_file is not None:
        text = args.thinking_file.read_text(encoding="utf-8")
        thinking = [text[i : i + 4] for i in range(0, len(text), 4)]
    server.default = Reply(
        pieces=pieces,
        delay=args.delay,
        first_byte_delay=args.first_byte_delay,
        thinking=thinking,
    )

    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT may be ignored when backgrounded
        signal.signal(signum, _interrupt)
    with server:
        print(server.url, flush=True)
        base = server.url + ("/v1" if args.kind == "openai" else "")
        print(
            f"fake {args.kind} serving {server.models} at {base} (Ctrl-C to stop)", file=sys.stderr
        )
        seen = 0
        try:
            while True:
                time.sleep(0.1)
                if args.quiet:
                    continue
                for request in server.requests[seen:]:
                    print(f"{request.method} {request.path}", file=sys.stderr, flush=True)
                    seen += 1
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
