"""First request (issue 7, target 2): process start to the request's first byte at the server.

For ``cortan ask -m ollama:M hi`` and ``-m openai:M``, against a loopback server
hosted by this process, beside a minimal script that imports the same client
library and sends the same streamed chat. The spawn time and the server's
``Recorded.received_at`` are both ``time.monotonic()`` in this process, so their
difference is the child's time to first byte. Target: ≤ 1.2× the minimal script.

Two more programs are shown beside, for context: the same request through the
library's async client (as cortan sends it), and the stack's floor, the least a
program on cortan's stack (docs/architecture.md) does before its request (Typer parses the command
line, pydantic-settings reads one setting, the async client sends the request in
an event loop). cortan against the floor is what cortan's own code costs; the floor
against the minimal script is what the stack costs.

The exit lag: from the server's last byte of the answer to the child being
reaped. Target: ≤ 30 ms (no slow teardown).

The first visible byte (issue 21): cortan and the minimal script on a
pseudo-terminal, from spawn to the answer's first word on the terminal (the
spinner does not count), where the renderer's imports and the context-window
lookup sit on the path. Target: ≤ 1.2× the minimal script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.benchmarks.measure import (
    PYTHON,
    Figure,
    cortan_command,
    isolated_env,
    median,
    ms,
    reap,
    report,
)
from tests.servers import FakeOllama, FakeOpenAI
from tests.servers.http import Exchange, FakeServer, Wire

REPEAT = 15
EXIT_LAG_TARGET_MS = 30.0

OLLAMA_SCRIPT = """
import sys, ollama
client = ollama.Client(host=sys.argv[1])
for part in client.chat(model=sys.argv[2], messages=[{"role": "user", "content": "hi"}],
                        stream=True):
    sys.stdout.write(part.message.content)
    sys.stdout.flush()
sys.stdout.write("\\n")
"""

OPENAI_SCRIPT = """
import sys, openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-bench", max_retries=0)
stream = client.chat.completions.create(
    model=sys.argv[2], messages=[{"role": "user", "content": "hi"}], stream=True,
    stream_options={"include_usage": True})
for chunk in stream:
    for choice in chunk.choices:
        if choice.delta.content:
            sys.stdout.write(choice.delta.content)
            sys.stdout.flush()
sys.stdout.write("\\n")
"""


# The same requests through the clients' async classes, as cortan makes them: context only.
OLLAMA_ASYNC_MAIN = """
import asyncio, sys, ollama
async def main():
    client = ollama.AsyncClient(host=sys.argv[1])
    async for part in await client.chat(
            model=sys.argv[2], messages=[{"role": "user", "content": "hi"}], stream=True):
        sys.stdout.write(part.message.content)
        sys.stdout.flush()
"""

OPENAI_ASYNC_MAIN = """
import asyncio, sys, openai
async def main():
    client = openai.AsyncOpenAI(base_url=sys.argv[1], api_key="sk-bench", max_retries=0)
    stream = await client.chat.completions.create(
        model=sys.argv[2], messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                sys.stdout.write(choice.delta.content)
                sys.stdout.flush()
"""

RUN_MAIN = "asyncio.run(main())\n"

# The least a program on cortan's stack does before its request: Typer parses the
# command line, pydantic-settings reads one setting, and the async client sends the
# request in an event loop. Context only: it shows how much of cortan's time is the stack.
STACK_FLOOR = """
import typer
from pydantic_settings import BaseSettings

class Settings(BaseSettings, env_prefix="CORTAN_"):
    default_model: str = ""

app = typer.Typer(add_completion=False, rich_markup_mode=None)

@app.callback()
def root() -> None:
    pass

@app.command()
def ask(prompt: list[str], model: str = typer.Option(..., "-m"),
        url: str = typer.Option(..., "--url")) -> None:
    Settings()
    sys.argv[1:] = [url, model]
    asyncio.run(main())

app()
"""


class _LastByte:
    """Mixin for a fake server: the client's CPU at its request, the time of the last byte."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_pid: int | None = None
        self.client_cpu: list[float] = []
        self.last_bytes: list[float] = []
        self.answered = threading.Condition()

    async def chat(self, ex: Exchange, model: str, wire: Wire, *, stream: bool) -> None:
        cpu = process_cpu(self.client_pid) if self.client_pid else float("nan")
        await super().chat(ex, model, wire, stream=stream)  # type: ignore[misc]
        with self.answered:
            self.client_cpu.append(cpu)
            self.last_bytes.append(time.monotonic())
            self.answered.notify_all()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process used so far; 10 ms resolution.

    NaN when it is gone (the pty runs do not say which process is asking).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TimedOllama(_LastByte, FakeOllama):
    pass


class TimedOpenAI(_LastByte, FakeOpenAI):
    pass


@dataclass(frozen=True, slots=True)
class Timing:
    first_byte: float  # seconds from spawn to the request's first byte at the server
    first_byte_cpu: float  # the child's CPU seconds when its request arrived
    exit_lag: float  # seconds from the answer's last byte to the child's exit
    cpu: float


def time_request(
    server: FakeServer, timed: _LastByte, argv: Sequence[str], env: Mapping[str, str]
) -> Timing:
    """Spawn ``argv``, wait for it, and read both ends of its request off the server."""
    seen = len(server.chat_requests)
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    timed.client_pid = proc.pid
    run = reap(proc, time.perf_counter())
    exited = time.monotonic()
    if run.code != 0 or len(server.chat_requests) != seen + 1:
        raise RuntimeError(f"{argv[:3]} failed (exit {run.code}) or sent no chat request")
    with timed.answered:
        last, cpu = timed.last_bytes[-1], timed.client_cpu[-1]
    return Timing(server.chat_requests[seen].received_at - start, cpu, exited - last, run.cpu)


def measure(
    server: FakeServer, cases: Mapping[str, tuple[Sequence[str], Mapping[str, str]]], repeat: int
) -> dict[str, list[Timing]]:
    assert isinstance(server, _LastByte)
    runs: dict[str, list[Timing]] = {name: [] for name in cases}
    for round_ in range(repeat + 1):  # the first round warms the disk cache, untimed
        for name, (argv, env) in cases.items():
            timing = time_request(server, server, argv, env)
            if round_:
                runs[name].append(timing)
    return runs


def figures(kind: str, runs: dict[str, list[Timing]]) -> list[Figure]:
    def med(name: str, pick: Callable[[Timing], float]) -> float:
        return ms(median([pick(t) for t in runs[name]]))

    first = {name: med(name, lambda t: t.first_byte) for name in runs}
    base = f"minimal {kind} script"
    floor = "Typer + pydantic-settings + async client"
    return [
        Figure(f"{kind}: first byte, minimal script", first["baseline"], "ms"),
        Figure(
            f"{kind}: first byte, cortan ask", first["cortan"], "ms", first["baseline"], base, 1.2
        ),
        Figure(
            f"{kind}: first byte, cortan ask, vs async script",
            first["cortan"],
            "ms",
            first["async"],
            f"minimal async {kind} script",
        ),
        Figure(
            f"{kind}: first byte, cortan ask, vs the stack's floor",
            first["cortan"],
            "ms",
            first["floor"],
            floor,
        ),
        Figure(
            f"{kind}: first byte, the stack's floor", first["floor"], "ms", first["baseline"], base
        ),
        Figure(
            f"{kind}: CPU to first byte, cortan ask",
            med("cortan", lambda t: t.first_byte_cpu),
            "ms CPU",
            med("baseline", lambda t: t.first_byte_cpu),
            base,
        ),
        Figure(
            f"{kind}: CPU of the whole run, cortan ask",
            med("cortan", lambda t: t.cpu),
            "ms CPU",
            med("baseline", lambda t: t.cpu),
            base,
        ),
        Figure(
            f"{kind}: exit after last byte, cortan ask",
            med("cortan", lambda t: t.exit_lag),
            "ms",
            target=EXIT_LAG_TARGET_MS,
        ),
        Figure(
            f"{kind}: exit after last byte, minimal script",
            med("baseline", lambda t: t.exit_lag),
            "ms",
        ),
    ]


Programs = dict[str, tuple[list[str], Mapping[str, str]]]

ANSWER_START = b"Hello"  # the fake servers' default answer: "Hello", ", ", "world", "!"


def time_visible(
    server: FakeServer, argv: Sequence[str], env: Mapping[str, str]
) -> tuple[float, float, float]:
    """Seconds from spawning ``argv`` on a pty to the answer's first word on it, from
    its chat request's arrival at ``server`` to that word, and the CPU it had used."""
    import pexpect

    from tests.benchmarks.bench_repl import Pty  # it imports this module

    pty = Pty(argv, env)
    try:
        seen = pty.wait_for(ANSWER_START)
        cpu = process_cpu(pty.pid)
    except pexpect.EOF:
        raise RuntimeError(f"{argv[:3]} ended before its answer: {pty.child.before!r}") from None
    pty.wait_exit()
    if pty.child.exitstatus != 0:
        raise RuntimeError(f"{argv[:3]} failed on a pty (exit {pty.child.exitstatus})")
    return seen - pty.spawned, seen - server.chat_requests[-1].received_at, cpu


def visible(kind: str, server: FakeServer, programs: Programs, repeat: int) -> list[Figure]:
    """The first visible byte on a pty, cortan beside the minimal script, interleaved."""
    names = ("baseline", "cortan")
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    for round_ in range(repeat + 1):  # the first round warms the disk cache, untimed
        for name in names:
            seconds = time_visible(server, *programs[name])
            if round_:
                runs[name].append(seconds)
    first = {name: ms(median([run[0] for run in runs[name]])) for name in names}
    after = {name: ms(median([run[1] for run in runs[name]])) for name in names}
    cpu = {name: ms(median([run[2] for run in runs[name]])) for name in names}
    return [
        Figure(f"{kind}: first visible byte, minimal script", first["baseline"], "ms"),
        Figure(
            f"{kind}: request to visible byte, cortan ask",
            after["cortan"],
            "ms",
            after["baseline"],
            f"minimal {kind} script",
        ),
        Figure(
            f"{kind}: first visible byte, cortan ask",
            first["cortan"],
            "ms",
            first["baseline"],
            f"minimal {kind} script",
            1.2,
        ),
        Figure(
            f"{kind}: CPU to first visible byte, cortan ask",
            cpu["cortan"],
            "ms CPU",
            cpu["baseline"],
            f"minimal {kind} script",
        ),
    ]


def programs_for(
    kind: str, script: str, async_main: str, url: str, model: str, env: Mapping[str, str]
) -> Programs:
    """The four programs measured for one provider kind, each sending the same request."""
    python = [PYTHON, "-c"]
    return {
        "baseline": ([*python, script, url, model], env),
        "async": ([*python, async_main + RUN_MAIN, url, model], env),
        "floor": ([*python, async_main + STACK_FLOOR, "ask", "-m", model, "--url", url, "hi"], env),
        "cortan": ([*cortan_command(), "ask", "-m", f"{kind}:{model}", "hi"], env),
    }


def main(repeat: int = REPEAT) -> dict[str, Any]:
    out: list[Figure] = []
    with TimedOllama() as ollama, isolated_env(OLLAMA_HOST=ollama.url) as env:
        programs = programs_for(
            "ollama", OLLAMA_SCRIPT, OLLAMA_ASYNC_MAIN, ollama.url, "llama3.2:latest", env
        )
        out += figures("ollama", measure(ollama, programs, repeat))
        out += visible("ollama", ollama, programs, repeat)
    with (
        TimedOpenAI() as openai,
        isolated_env(OPENAI_BASE_URL=openai.url + "/v1", OPENAI_API_KEY="sk-bench") as env,
    ):
        url = openai.url + "/v1"
        programs = programs_for("openai", OPENAI_SCRIPT, OPENAI_ASYNC_MAIN, url, "gpt-4o-mini", env)
        out += figures("openai", measure(openai, programs, repeat))
        out += visible("openai", openai, programs, repeat)
    return report(f"first request: median of {repeat} runs each", out, repeat=repeat)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else REPEAT)
