"""The gateway (issue 20): what ``cortan serve`` adds to a request, against going direct.

One loopback upstream (the fake Ollama, in a process of its own) is called directly
and through ``cortan serve`` (a process of its own, store on, as users run it) with
the same Ollama ``/api/chat`` request, streamed and not, at 1, 8 and 64 requests in
flight, interleaved round by round so that noise hits both. Figures: added latency
(p50 and p99 of the gateway minus the same percentile direct; targets 2 ms and
10 ms), throughput of small whole completions against direct, and the time from a
client's disconnect to the upstream seeing it (target 100 ms). With wrk, a second
pass asks an upstream that takes a model's 100 ms before answering (``main_wrk``).

Each request in flight is its own client with one keep-alive connection (as many
editors and scripts are), made and connected before the clock starts. One shared
httpx pool of 64 connections is no load generator: its bookkeeping is quadratic in
its connections (``is_idle`` over every connection for each one, a ``poll`` of each
socket per request), which held it near 100 requests a second and so measured the
client rather than the gateway. (It also left connections idle for seconds, which is
how the gateway's keep-alive close at httpx's own 5 s came to light: serve.keep_alive.)

On this 2-core machine the load generator, the gateway and the upstream share the
cores, so the absolute figures are pessimistic for every path alike. Where wrk is
installed (``apt-get install wrk``), it is the load generator: written in C, it
leaves the cores to the gateway and the upstream (the Python clients above spend more
CPU per request than the gateway does), and it measures both paths alike. Without it,
the Python clients measure, and the report says which did.

Two yardsticks run in the same rounds with wrk. The floor (floor_proxy.py: uvicorn,
Starlette and aiohttp relaying the bytes, nothing else) is the least any gateway on
cortan's stack adds on this machine: where the floor misses a target, no gateway
on this stack meets it here. The peer, LiteLLM's proxy (the one the issue names;
installed apart, found by ``CORTAN_BENCH_LITELLM`` or on PATH, skipped without it),
is measured beside cortan's OpenAI-compatible door.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx

from tests.benchmarks.measure import Figure, cortan_command, isolated_env, report
from tests.servers import FakeOllama, Reply

TOKEN = "bench-token-0123456789abcdef"
BODY = {"model": "ollama:m", "messages": [{"role": "user", "content": "hi"}]}
DIRECT_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def start_upstream(*options: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "ollama", "--model", "m", "--quiet", *options],
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
    return proc, listening(proc, "cortan serve")


def listening(proc: subprocess.Popen[str], what: str) -> str:
    """The URL ``proc`` says on stderr it is listening on (``… listening on URL``)."""
    assert proc.stderr is not None
    while "listening on" not in (line := proc.stderr.readline()):
        assert line, f"{what} did not start"
    return line.split("listening on ")[1].strip()


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


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
%s
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


class Run(NamedTuple):
    """One wrk run: requests per second, p50 and p99 in seconds, the gateway's CPU."""

    rate: float
    p50: float
    p99: float
    cpu: float | None = None  # seconds of the gateway's CPU per request (all threads)
    loop_cpu: float | None = None  # the same, its event loop's thread alone


def wrk(url: str, body: dict[str, Any], headers: dict[str, str], in_flight: int,
        seconds: float, pid: int | None = None) -> Run:  # fmt: skip
    """``in_flight`` connections sending ``body`` for ``seconds``, by wrk."""
    lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (json.dumps(json.dumps(body)), lines))
    before = _cpu(pid)
    try:
        done = subprocess.run(
            ["wrk", f"-t{min(2, in_flight)}", f"-c{in_flight}", f"-d{round(seconds)}s",
             "--timeout", "30s", "-s", script.name, url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
    finally:
        os.unlink(script.name)
    after = _cpu(pid)
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    count, duration, p50, p99, errors = map(int, found.groups())
    assert errors == 0, f"{errors} failed requests: {done.stdout}"
    cpu = loop = None
    if before is not None and after is not None:
        cpu, loop = ((a - b) / count for a, b in zip(after, before, strict=True))
    return Run(count / (duration / 1e6), p50 / 1e6, p99 / 1e6, cpu, loop)


def _cpu(pid: int | None) -> tuple[float, float] | None:
    """A process's CPU seconds, all its threads and its main thread's, from /proc."""
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat") as whole, open(f"/proc/{pid}/task/{pid}/stat") as main:
            fields = [f.read().rpartition(")")[2].split() for f in (whole, main)]
    except OSError:
        return None
    return ((int(fields[0][11]) + int(fields[0][12])) / tick,
            (int(fields[1][11]) + int(fields[1][12])) / tick)  # fmt: skip


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
    if shutil.which("wrk") and "--python-load" not in sys.argv:
        return main_wrk(rounds, 2.0 if quick else 5.0)
    return main_python(rounds, quick)


def main_wrk(rounds: int, seconds: float) -> dict[str, Any]:
    """The figures with wrk as the load generator, rounds interleaved direct/floor/gateway.

    Against the fake that answers at once, 8 and 64 requests in flight keep the
    gateway busy all the time: it answers a fraction of the requests a second the fake
    alone does, so each request waits behind the others and the added latency measures
    the gateway's capacity (Little's law), not what it adds to one request. The floor
    (floor_proxy.py: uvicorn, Starlette and aiohttp relaying bytes, nothing else) is
    measured the same way in the same rounds: what any gateway on this stack adds on
    this machine. The second pass asks a fake that takes ``MODEL_S`` before answering, as
    a model does, so that the same numbers in flight are a load the gateway can carry.
    Where LiteLLM's proxy is installed (``peer_command``), a third pass measures it,
    the proxy the issue names, beside cortan's OpenAI-compatible door.
    """
    figures: list[Figure] = []
    extra: dict[str, Any] = {"load_generator": "wrk"}
    with isolated_env() as env, contextlib.ExitStack() as stack:
        paths = _three_paths(stack, env, start_upstream(), cpu=True)
        runs = _latency(figures, extra, paths, (1, 8, 64), rounds, seconds, "")
        _sustained(figures, paths, seconds * SUSTAINED_RUNS)
        stack.close()
        by_path = runs[(False, 64)]
        rate = statistics.median(r.rate for r in by_path["gateway"])
        for name in ("direct", "floor"):
            figures.append(Figure(
                "proxied whole completions per second (64 connections)", rate, "/s",
                baseline=statistics.median(r.rate for r in by_path[name]), baseline_name=name,
            ))  # fmt: skip
        figures.append(Figure(
            "proxied completions per second (target 1000)", rate, "/s", target=1000,
            higher_is_better=True,
        ))  # fmt: skip
        _cpu_figures(figures, by_path)
        slow = start_upstream("--first-byte-delay", str(MODEL_S))
        paths = _three_paths(stack, env, slow, cpu=False)
        _latency(figures, extra, paths, (8, 64), rounds, seconds,
                 f", upstream {MODEL_S * 1000:.0f} ms")  # fmt: skip
        stack.close()
        _peer(figures, extra, env, rounds, seconds)
        cut = measure_disconnect(env, 20)
        figures.append(Figure(
            "disconnect to upstream cancel, median ms", statistics.median(cut) * 1000, "ms",
            target=100,
        ))  # fmt: skip
    return report("cortan serve against going direct (bench_serve, wrk)", figures, detail=extra)


#: A sustained run is this many of the latency runs long: long enough that the store's
#: backlog (store/writer.py) is full and the rate is the store's pace, not a burst.
SUSTAINED_RUNS = 4


def _sustained(figures: list[Figure], paths: tuple[Path, ...], seconds: float) -> None:
    """Whole completions a second at 64 connections held for ``seconds``, every request
    stored: the throughput target is judged on this, since in a short run the first
    seconds' writes can wait in the store's backlog."""
    direct, gateway = (
        wrk(path.url, {**path.body, "stream": False}, path.headers, 64, seconds)
        for path in (paths[0], paths[-1])
    )
    what = f"proxied completions per second, 64 connections for {seconds:g} s"
    figures.append(Figure(what, gateway.rate, "/s", baseline=direct.rate, baseline_name="direct"))
    figures.append(Figure(f"{what} (target 1000)", gateway.rate, "/s", target=1000,
                          higher_is_better=True))  # fmt: skip


#: How long the second pass's upstream takes before answering: a small model's first
#: token on a GPU; 64 requests in flight are then 640 a second, within the gateway's means.
MODEL_S = 0.1


class Path(NamedTuple):
    """One way to the fake upstream's chat: going direct, or through a proxy."""

    name: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    pid: int | None  # the proxy's process, whose CPU per request is read


def _three_paths(
    stack: contextlib.ExitStack, env: dict[str, str],
    upstream: tuple[subprocess.Popen[str], str], *, cpu: bool,
) -> tuple[Path, ...]:  # fmt: skip
    """Going direct to ``upstream``, through the floor, through the gateway: each
    process stopped when ``stack`` closes; ``cpu``: the proxies' CPU is read."""
    upstream_url = stack.enter_context(running(*upstream))
    floor = stack.enter_context(running(*start_floor(upstream_url), pid=True))
    gateway = stack.enter_context(running(*start_gateway(upstream_url, env), pid=True))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return (Path("direct", upstream_url + "/api/chat", DIRECT_BODY, {}, None),
            Path("floor", floor[0] + "/api/chat", DIRECT_BODY, {}, floor[1] if cpu else None),
            Path("gateway", gateway[0] + "/api/chat", BODY, headers,
                 gateway[1] if cpu else None))  # fmt: skip


@contextlib.contextmanager
def running(proc: subprocess.Popen[str], url: str, *, pid: bool = False) -> Iterator[Any]:
    """``url`` (with the process id when ``pid``) while ``proc`` serves it; then stopped."""
    try:
        yield (url, proc.pid) if pid else url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_floor(upstream: str) -> tuple[subprocess.Popen[str], str]:
    """floor_proxy.py in a process of its own, relaying to ``upstream``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.floor_proxy", upstream],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return proc, listening(proc, "the floor proxy")


def _latency(figures: list[Figure], extra: dict[str, Any], paths: tuple[Path, ...],
             in_flights: tuple[int, ...], rounds: int, seconds: float,
             label: str) -> dict[tuple[bool, int], dict[str, list[Run]]]:  # fmt: skip
    """Added p50 and p99 of each proxy at each number in flight, streamed and not.

    ``paths[0]`` is going direct, the baseline of the others; each percentile is a
    proxy's minus direct's, medians over the rounds, and the line names both, since at
    p99 either path's stalls (the fake's own included) can make the difference
    negative. The targets are the gateway's; the other proxies' lines are context.
    Returns the runs by case, then by path.
    """
    runs: dict[tuple[bool, int], dict[str, list[Run]]] = {}
    direct_name = paths[0].name
    for stream in (False, True):
        kind = "streamed" if stream else "whole"
        for in_flight in in_flights:
            case: dict[str, list[Run]] = {path.name: [] for path in paths}
            for _ in range(rounds):
                for path in paths:
                    body = {**path.body, "stream": stream}
                    run = wrk(path.url, body, path.headers, in_flight, seconds, path.pid)
                    case[path.name].append(run)
            runs[(stream, in_flight)] = case
            for q, target in ((50, 2.0), (99, 10.0)):
                d = statistics.median(getattr(r, f"p{q}") for r in case[direct_name])
                for path in paths[1:]:
                    g = statistics.median(getattr(r, f"p{q}") for r in case[path.name])
                    who = "" if path.name == "gateway" else f"{path.name}: "
                    figures.append(Figure(
                        f"{who}added p{q} ms, {kind}, {in_flight} in flight{label}"
                        f" ({g * 1000:.1f} vs {d * 1000:.1f} {direct_name})", (g - d) * 1000,
                        "ms", target=target if path.name == "gateway" else None,
                    ))  # fmt: skip
                    extra[f"{who}p{q}_{kind}_{in_flight}{label}"] = {
                        "direct_ms": d * 1000, "proxied_ms": g * 1000, "ratio": g / d,
                    }  # fmt: skip
            for path in paths[1:]:
                cpu = [r.loop_cpu for r in case[path.name] if r.loop_cpu is not None]
                if cpu:
                    key = f"{path.name}_loop_cpu_ms_{kind}_{in_flight}{label}"
                    extra[key] = statistics.median(cpu) * 1000
    return runs


def _cpu_figures(figures: list[Figure], by_path: dict[str, list[Run]]) -> None:
    """The gateway's CPU per proxied request (all its threads, then its event loop's),
    against the floor's in the same rounds."""

    def median(name: str, field: str) -> float | None:
        known = [v for r in by_path[name] if (v := getattr(r, field)) is not None]
        return statistics.median(known) * 1000 if known else None

    for field, what in (("cpu", "all threads"), ("loop_cpu", "its event loop's thread")):
        gateway, floor = median("gateway", field), median("floor", field)
        if gateway is not None:
            figures.append(Figure(
                f"gateway CPU per proxied request, {what}, ms", gateway, "ms",
                baseline=floor, baseline_name="floor",
            ))  # fmt: skip


#: The peer proxy the issue measures against (LiteLLM), where installed: a path to its
#: ``litellm`` command in CORTAN_BENCH_LITELLM, or ``litellm`` on PATH. Never a
#: dependency of cortan's: install it apart (``pipx install 'litellm[proxy]'``).
PEER_KEY = "sk-bench-0123456789abcdef0123456789abcdef"


def peer_command() -> str | None:
    return os.environ.get("CORTAN_BENCH_LITELLM") or shutil.which("litellm")


def start_peer(command: str, upstream: str, home: str) -> tuple[subprocess.Popen[str], str]:
    """LiteLLM's proxy on ``upstream`` as one model, offline: its price list from its own
    package (not fetched), no telemetry, one worker as one cortan serve has one loop."""
    config = os.path.join(home, "litellm.yaml")
    with open(config, "w") as file:
        file.write("model_list:\n  - model_name: m\n    litellm_params:\n"
                   f"      model: ollama_chat/m\n      api_base: {upstream}\n"
                   "litellm_settings:\n  telemetry: false\n")  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": PEER_KEY,
           "HOME": home, "NO_PROXY": "*"}  # fmt: skip
    proc = subprocess.Popen(
        [command, "--config", config, "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "LiteLLM's proxy exited at start"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health/liveliness", timeout=2).status_code == 200:
                return proc, url
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("LiteLLM's proxy did not start in 120 s")


def _peer(figures: list[Figure], extra: dict[str, Any], env: dict[str, str], rounds: int,
          seconds: float) -> None:  # fmt: skip
    """cortan's OpenAI-compatible door against LiteLLM's, same fake, same rounds."""
    command = peer_command()
    if command is None:
        extra["peer"] = "LiteLLM not installed: set CORTAN_BENCH_LITELLM to measure it"
        return
    headers = {"Authorization": f"Bearer {TOKEN}"}
    openai_body = {"model": "m", "messages": BODY["messages"]}
    with tempfile.TemporaryDirectory() as home, contextlib.ExitStack() as stack:
        upstream_url = stack.enter_context(running(*start_upstream()))
        gateway = stack.enter_context(running(*start_gateway(upstream_url, env), pid=True))
        peer = stack.enter_context(running(*start_peer(command, upstream_url, home)))
        paths = (Path("direct", upstream_url + "/api/chat", DIRECT_BODY, {}, None),
                 Path("gateway", gateway[0] + "/v1/chat/completions",
                      {**openai_body, "model": "ollama:m"}, headers, gateway[1]),
                 Path("LiteLLM", peer + "/v1/chat/completions", openai_body,
                      {"Authorization": f"Bearer {PEER_KEY}"}, None))  # fmt: skip
        peer_figures: list[Figure] = []
        runs = _latency(peer_figures, extra, paths, (1, 8), rounds, seconds,
                        ", OpenAI door")  # fmt: skip
        for (stream, in_flight), case in runs.items():
            kind = "streamed" if stream else "whole"
            for q in (50, 99):
                d, g, p = (statistics.median(getattr(r, f"p{q}") for r in case[name])
                           for name in ("direct", "gateway", "LiteLLM"))  # fmt: skip
                figures.append(Figure(
                    f"added p{q} ms, {kind}, {in_flight} in flight, OpenAI door, vs LiteLLM",
                    (g - d) * 1000, "ms", baseline=(p - d) * 1000, baseline_name="LiteLLM",
                ))  # fmt: skip
            figures.append(Figure(
                f"completions per second, {kind}, {in_flight} in flight, OpenAI door",
                statistics.median(r.rate for r in case["gateway"]), "/s",
                baseline=statistics.median(r.rate for r in case["LiteLLM"]),
                baseline_name="LiteLLM", higher_is_better=True,
            ))  # fmt: skip


def main_python(rounds: int = 3, quick: bool = False) -> dict[str, Any]:
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
