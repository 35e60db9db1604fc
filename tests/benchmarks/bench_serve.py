"""The gateway (issue 20): what ``cortan serve`` adds to a request, against going direct.

One loopback upstream (the fake Ollama, in a process of its own) is called directly
and through ``cortan serve`` (a process of its own, store on, as users run it) with
the same Ollama ``/api/chat`` request, streamed and not, at 1, 8 and 64 requests in
flight, interleaved round by round so that noise hits both. Figures: added latency
(p50 and p99 of the gateway minus the same percentile direct; targets 2 ms and
10 ms), throughput of small whole completions against direct, and the time from a
client's disconnect to the upstream seeing it (target 100 ms).

Each request in flight is its own client with one keep-alive connection (as many
editors and scripts are), made and connected before the clock starts. One shared
httpx pool of 64 connections is no load generator: its bookkeeping is quadratic in
its connections (``is_idle`` over every connection for each one, a ``poll`` of each
socket per request), which held it near 100 requests a second and so measured the
client rather than the gateway. (It also left connections idle for seconds, which is
how the gateway's keep-alive close at httpx's own 5 s came to light: serve.keep_alive.)

On this 2-core machine the load generator, the gateway and the upstream share the
cores, so the absolute figures are pessimistic for every path alike.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from tests.benchmarks.measure import Figure, cortan_command, isolated_env, report
from tests.servers import FakeOllama, Reply

TOKEN = "bench-token-0123456789abcdef"
BODY = {"model": "ollama:m", "messages": [{"role": "user", "content": "hi"}]}
DIRECT_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def start_upstream() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "ollama", "--model", "m", "--quiet"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def start_gateway(upstream: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """``cortan serve`` on ``upstream``, allowed to send it as many requests at once as the
    clients do (``parallel``: the engine sends an Ollama host one at a time by default, as
    Ollama answers unless told otherwise; the fake answers any number at once)."""
    env = {**env, "CORTAN_PROVIDERS__OLLAMA__KIND": "ollama",
           "CORTAN_PROVIDERS__OLLAMA__HOSTS": f'["{upstream}"]',
           "CORTAN_PROVIDERS__OLLAMA__PARALLEL": "1024", "CORTAN_SERVE_TOKEN": TOKEN,
           "CORTAN_DEFAULT_MODEL": "ollama:m", "CORTAN_SERVE__QUEUE_PER_HOST": "100000",
           "CORTAN_SERVE__STREAMS_PER_HOST": "10000"}  # fmt: skip
    proc = subprocess.Popen(
        [*cortan_command(), "serve", "--port", "0", "--quiet"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    while "cortan serve: listening on" not in (line := proc.stderr.readline()):
        assert line, "cortan serve did not start"
    return proc, line.split("listening on ")[1].strip()


async def timed(client: httpx.AsyncClient, url: str, body: dict[str, Any], stream: bool) -> float:
    start = time.perf_counter()
    async with client.stream("POST", url, json={**body, "stream": stream}) as response:
        async for _ in response.aiter_raw():
            pass
        assert response.status_code == 200, response.status_code
    return time.perf_counter() - start


async def load(url: str, body: dict[str, Any], headers: dict[str, str], in_flight: int,
               count: int, stream: bool) -> tuple[list[float], float]:  # fmt: skip
    """``count`` requests, ``in_flight`` at a time: their latencies and the wall time."""
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()  # unused on http://, but each client would build one
    clients = [httpx.AsyncClient(headers=headers, limits=one, timeout=60, verify=tls)
               for _ in range(in_flight)]  # fmt: skip
    try:
        await asyncio.gather(*(timed(client, url, body, stream) for client in clients))
        queue = list(range(count))
        times: list[float] = []

        async def worker(client: httpx.AsyncClient) -> None:
            while queue:
                queue.pop()
                times.append(await timed(client, url, body, stream))

        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for client in clients))
        return times, time.perf_counter() - start
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 2 else max(values)


def measure_disconnect(env: dict[str, str], repeat: int) -> list[float]:
    """Seconds from closing a streamed request to the upstream seeing the client go."""
    seconds = []
    with FakeOllama() as slow:
        slow.default = Reply(pieces=["x"] * 2000, delay=0.005)
        gateway, url = start_gateway(slow.url, env)
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(headers=headers, timeout=30) as client:
                for n in range(repeat):
                    body = {**BODY, "model": "ollama:llama3.2:latest", "stream": True}
                    with client.stream("POST", url + "/api/chat", json=body) as response:
                        chunks = response.iter_raw()
                        next(chunks)
                        start = time.monotonic()
                    assert slow.wait_disconnect(timeout=5, count=n + 1)
                    seconds.append(time.monotonic() - start)
        finally:
            gateway.terminate()
            gateway.wait(30)
    return seconds


def main(rounds: int = 3, quick: bool = False) -> dict[str, Any]:
    counts = {1: 100, 8: 400, 64: 1280} if not quick else {1: 30, 8: 120, 64: 256}
    figures: list[Figure] = []
    extra: dict[str, Any] = {}
    upstream, upstream_url = start_upstream()
    with isolated_env() as env:
        gateway, gateway_url = start_gateway(upstream_url, env)
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            for stream in (False, True):
                for in_flight, count in counts.items():
                    direct: list[float] = []
                    proxied: list[float] = []
                    for _ in range(rounds):
                        direct += asyncio.run(load(upstream_url + "/api/chat", DIRECT_BODY, {},
                                                   in_flight, count, stream))[0]  # fmt: skip
                        proxied += asyncio.run(load(gateway_url + "/api/chat", BODY, headers,
                                                    in_flight, count, stream))[0]  # fmt: skip
                    kind = "streamed" if stream else "whole"
                    for q, target in ((50, 2.0), (99, 10.0)):
                        added = (pct(proxied, q) - pct(direct, q)) * 1000
                        figures.append(Figure(
                            f"added p{q} ms, {kind}, {in_flight} in flight", added, "ms",
                            target=target,
                        ))  # fmt: skip
                        extra[f"p{q}_{kind}_{in_flight}"] = {
                            "direct_ms": pct(direct, q) * 1000,
                            "gateway_ms": pct(proxied, q) * 1000,
                            "ratio": pct(proxied, q) / pct(direct, q),
                        }
            _, direct_wall = asyncio.run(
                load(upstream_url + "/api/chat", DIRECT_BODY, {}, 64, counts[64] * 2, False)
            )
            _, proxied_wall = asyncio.run(
                load(gateway_url + "/api/chat", BODY, headers, 64, counts[64] * 2, False)
            )
            figures.append(Figure(
                "proxied whole completions per second", counts[64] * 2 / proxied_wall, "/s",
                baseline=counts[64] * 2 / direct_wall, baseline_name="direct",
            ))  # fmt: skip
            figures.append(Figure(
                "proxied completions per second (target 1000)", counts[64] * 2 / proxied_wall,
                "/s", target=1000, higher_is_better=True,
            ))  # fmt: skip
        finally:
            gateway.terminate()
            gateway.wait(30)
            upstream.terminate()
            upstream.wait(10)
        cut = measure_disconnect(env, 5 if quick else 20)
        figures.append(Figure(
            "disconnect to upstream cancel, median ms", statistics.median(cut) * 1000, "ms",
            target=100,
        ))  # fmt: skip
    return report("cortan serve against going direct (bench_serve)", figures, detail=extra)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
