"""Held connections (issue 20): idle WebSockets and concurrent streams in one gateway.

One ``cortan serve`` process (store on, as users run it) holds

* 10,000 idle WebSocket connections (authenticated, upgraded, then silent): its RSS
  before and while they are held, the RSS each one costs (target 20 KiB), and a
  whole request's latency with them held against the same request before;
* 1,000 streaming ``/api/chat`` clients at once, against the same 1,000 sent to
  the upstream directly in the same run: every answer complete, how many were in
  flight together at the peak, the wall time of the wave against direct, and the
  RSS each stream in progress costs.

The clients are raw asyncio sockets (a hand-written handshake, one POST with
``Connection: close`` read to its end): an SDK client per connection would weigh
more than the gateway it measures. The benchmark raises its own open-files limit
to the hard limit (the gateway raises its own, ``serve.server``); a hard limit
below what it needs is said, and the counts are cut to fit.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import resource
import statistics
import sys
import time
from typing import Any

from tests.benchmarks.bench_serve import BODY, DIRECT_BODY, TOKEN, start_gateway
from tests.benchmarks.measure import Figure, isolated_env, report

DONE = re.compile(rb'"done":\s*true')
#: Seconds between the upstream's pieces: a stream lasts long enough for all to overlap.
PIECE_DELAY = 0.5


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-files limit toward ``wanted``; the limit it got."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft if soft != resource.RLIM_INFINITY else wanted


def split(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def open_socket(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An upgraded, authenticated, idle WebSocket on the gateway at ``url``."""
    host, port = split(url)
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        writer.close()
        raise RuntimeError(f"no upgrade: {head[:80]!r}")
    return reader, writer


async def hold_sockets(
    url: str, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` idle WebSockets, opened at most 200 handshakes at a time."""
    gate = asyncio.Semaphore(200)

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with gate:
            return await open_socket(url)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in held:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for _, w in held), return_exceptions=True)


async def post(url: str, path: str, body: bytes, auth: bool) -> tuple[float, float, bytes]:
    """One POST read to its end: (started, ended, body) with Connection: close."""
    host, port = split(url)
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    headers = f"Authorization: Bearer {TOKEN}\r\n" if auth else ""
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{headers}Connection: close\r\n\r\n".encode()
        + body
    )
    data = await reader.read()
    writer.close()
    return started, time.perf_counter(), data


async def wave(url: str, path: str, body: dict[str, Any], count: int, auth: bool,
               sample: int | None = None) -> dict[str, Any]:  # fmt: skip
    """``count`` streams started together: how many completed, the peak overlap, wall time.

    ``sample`` is a pid whose RSS is read every 50 ms during the wave (its peak is kept).
    """
    import json

    raw = json.dumps({**body, "stream": True}).encode()
    began = time.perf_counter()
    tasks = [asyncio.create_task(post(url, path, raw, auth)) for _ in range(count)]
    peak_rss: int | None = None

    async def watch(pid: int) -> None:
        nonlocal peak_rss
        while True:
            peak_rss = max(peak_rss or 0, rss_kib(pid))
            await asyncio.sleep(0.05)  # a sampling period, not a wait for something

    watcher = asyncio.create_task(watch(sample)) if sample is not None else None
    results = await asyncio.gather(*tasks, return_exceptions=True)
    if watcher is not None:
        watcher.cancel()
    wall = time.perf_counter() - began
    done = [r for r in results if not isinstance(r, BaseException)]
    complete = [r for r in done if DONE.search(r[2]) and b" 200 " in r[2][:16]]
    events = sorted([(s, 1) for s, _, _ in done] + [(e, -1) for _, e, _ in done])
    overlap = peak = 0
    for _, step in events:
        overlap += step
        peak = max(peak, overlap)
    return {
        "complete": len(complete),
        "peak": peak,
        "wall": wall,
        "median": statistics.median(e - s for s, e, _ in done) if done else float("nan"),
        "rss": peak_rss,
    }


async def whole_latency(url: str, repeat: int) -> float:
    import json

    raw = json.dumps({**BODY, "stream": False}).encode()
    times = []
    for _ in range(repeat):
        started, ended, data = await post(url, "/api/chat", raw, True)
        assert b" 200 " in data[:16], data[:80]
        times.append(ended - started)
    return statistics.median(times)


def start_slow_upstream() -> tuple[Any, str]:
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "ollama", "--model", "m", "--quiet",
         "--delay", str(PIECE_DELAY)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main(sockets: int = 10_000, streams: int = 1_000) -> dict[str, Any]:
    limit = raise_fd_limit(max(sockets, streams) + 1024)
    sockets = min(sockets, limit - 512)
    streams = min(streams, limit - 512)
    figures: list[Figure] = []
    extra: dict[str, Any] = {"fd_limit": limit, "sockets": sockets, "streams": streams}
    upstream, upstream_url = start_slow_upstream()
    with isolated_env() as env:
        env = {**env, "CORTAN_SERVE__MAX_STREAMS": str(streams * 2),
               "CORTAN_SERVE__MAX_CONNECTIONS": str(sockets + streams + 1024)}  # fmt: skip
        gateway, url = start_gateway(upstream_url, env)
        try:
            # Warm: the first requests import the engine's and the provider's modules.
            latency_before = asyncio.run(whole_latency(url, 10))
            direct = asyncio.run(wave(upstream_url, "/api/chat", DIRECT_BODY, streams, False))
            base = rss_kib(gateway.pid)
            proxied = asyncio.run(wave(url, "/api/chat", BODY, streams, True, gateway.pid))
            extra.update(direct=direct, proxied=proxied, rss_before_streams_kib=base)
            figures.append(Figure(
                f"streams completed of {streams} at once", proxied["complete"], "",
                target=streams, higher_is_better=True,
            ))  # fmt: skip
            figures.append(Figure(
                "streams in flight together at the peak", proxied["peak"], "",
                baseline=direct["peak"], baseline_name="direct",
            ))  # fmt: skip
            figures.append(Figure(
                f"wall time of {streams} streams, s", proxied["wall"], "s",
                baseline=direct["wall"], baseline_name="direct",
            ))  # fmt: skip
            if proxied["rss"] is not None:
                figures.append(Figure(
                    "RSS per stream in progress, KiB", (proxied["rss"] - base) / streams, "KiB",
                ))  # fmt: skip
            before = rss_kib(gateway.pid)  # after the wave: its memory is the pool's now

            async def idle() -> tuple[float, float, int]:
                started = time.perf_counter()
                held = await hold_sockets(url, sockets)
                opened = time.perf_counter() - started
                during = rss_kib(gateway.pid)
                latency = await whole_latency(url, 10)
                await close_all(held)
                return opened, latency, during

            opened, latency_held, during = asyncio.run(idle())
            per_socket = (during - before) / sockets
            extra.update(rss_before_kib=before, rss_with_sockets_kib=during,
                         open_seconds=opened)  # fmt: skip
            figures.append(Figure(
                f"RSS per idle WebSocket, KiB ({sockets} held)", per_socket, "KiB", target=20,
            ))  # fmt: skip
            figures.append(Figure(
                f"gateway RSS with {sockets} idle WebSockets", during / 1024, "MiB",
                baseline=before / 1024, baseline_name="before connecting",
            ))  # fmt: skip
            figures.append(Figure(
                "whole request with the sockets held, ms", latency_held * 1000, "ms",
                baseline=latency_before * 1000, baseline_name="before",
            ))  # fmt: skip

        finally:
            gateway.terminate()
            gateway.wait(60)
            upstream.terminate()
            upstream.wait(10)
    return report("held connections in one gateway (bench_held)", figures, detail=extra)


def quick() -> dict[str, Any]:
    return main(1_000, 100)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
