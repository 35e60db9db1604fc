"""REPL (issue 7, targets 3 and 7): time to a prompt that takes typing, and the shell's memory.

``cortan chat`` runs in a pseudo-terminal (pexpect, 100 columns) against a fake
Ollama hosted by this process. Figures:

* ready: spawn to the prompt (``›``) drawn, wall time, median of several runs, as a
  ratio to a bare ``python -c pass`` spawned on a pty the same way (≤ 25×); the
  CPU the shell had used by then, beside bare Python's whole run, for context;
* the echo of a key sent the moment the prompt appears, while the SDKs and the
  model list load in the background, beside the echo of a key when all is idle;
* RSS at the prompt (≤ 40 MiB), beside the stack's floor: a bare interpreter that
  imported only the libraries the team chose for the settings, the REPL and the
  command line (pydantic-settings, prompt_toolkit, Typer), and the least prompt on
  that stack (those imported, then a ``PromptSession`` with a history file waiting
  on the same pty), measured the same way as the shell; and which of openai,
  ollama and keyring were loaded before it was drawn (none): a run under this
  benchmark's own wrapper logs every import with its time (``sys.addaudithook``),
  to compare with the moment the prompt appeared;
* idle RSS after the first answer, against a bare interpreter that imported the
  same top-level libraries the shell had loaded by then (≤ 1.3×);
* what a 32k-token markdown answer adds to the RSS, per byte of its text (a few
  times its size: ≤ 4×).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pexpect

from tests.benchmarks.bench_first_request import TimedOllama, process_cpu
from tests.benchmarks.bench_render import make_answer, pieces_of
from tests.benchmarks.measure import (
    BARE,
    PYTHON,
    Figure,
    cortan_command,
    isolated_env,
    median,
    report,
    run_child,
)
from tests.servers import Reply

REPEAT = 7
PROMPT = "›".encode()
KEY = b"z"  # a key whose echo no escape sequence contains
STATUS_LINE = b" tok/s"  # the shell's line under a finished answer ("… · 52.1 tok/s · 1.2 s")
ROWS, COLS = 40, 100
MODEL = "llama3.2:latest"
# The least any shell on this stack loads before its prompt (docs/architecture.md lists the stack).
STACK_FLOOR = ["pydantic_settings", "prompt_toolkit", "prompt_toolkit.shortcuts", "typer"]
HEAVY = ("openai", "ollama", "keyring")

# Runs the `cortan` entry point with argv[2:], logging (time, module) of every import to argv[1].
IMPORT_LOG = """
import atexit, json, sys, time
out, log = sys.argv[1], []
sys.addaudithook(lambda event, args: event == "import" and log.append((time.monotonic(), args[0])))
def dump():
    with open(out, "w") as f:
        json.dump(log, f)
atexit.register(dump)
sys.argv = ["cortan", *sys.argv[2:]]
from cortan.cli import main
main()
"""

# The least prompt on the stack: its libraries imported, a PromptSession with a file
# history (argv[1]) waiting on the pty with the shell's prompt sign.
STACK_PROMPT = """
import sys
import pydantic_settings, typer
from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory
try:
    PromptSession(history=FileHistory(sys.argv[1])).prompt("\u203a ")
except EOFError:
    pass
"""

# A bare interpreter that imports the given top-level modules, then waits on stdin.
SAME_LIBRARIES = """
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
print("ready", flush=True)
sys.stdin.read()
"""


class Pty:
    """A child on a pseudo-terminal; its output is drained as it arrives."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.spawned = time.monotonic()
        self.child = pexpect.spawn(
            argv[0], list(argv[1:]), env=dict(env), dimensions=(ROWS, COLS), encoding=None
        )
        self.child.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default
        self.tail = b""

    @property
    def pid(self) -> int:
        return int(self.child.pid)

    def wait_for(self, marker: bytes, timeout: float = 60) -> float:
        """Read until ``marker`` appears in output not yet searched; the time it was seen."""
        deadline, window = time.monotonic() + timeout, self.tail
        while marker not in window:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{marker!r} never appeared; last output: {window[-300:]!r}")
            with contextlib.suppress(pexpect.TIMEOUT):
                window = window[-len(marker) :] + self.child.read_nonblocking(1 << 16, 0.05)
        seen = time.monotonic()
        self.tail = window[window.index(marker) + len(marker) :]
        return seen

    def wait_exit(self, timeout: float = 30) -> float:
        self.child.expect(pexpect.EOF, timeout=timeout)
        ended = time.monotonic()
        self.child.close()
        return ended

    def rss_kib(self) -> int:
        return read_rss_kib(self.pid)

    def settle(self, timeout: float = 5.0) -> int:
        """Drain output until the RSS holds still for half a second (background work done)."""
        last, steady, deadline = -1, 0, time.monotonic() + timeout
        while steady < 5 and time.monotonic() < deadline:
            with contextlib.suppress(pexpect.TIMEOUT):
                self.child.read_nonblocking(1 << 16, timeout=0.1)
            rss = self.rss_kib()
            steady, last = (steady + 1, rss) if rss == last else (0, rss)
        return last

    def leave(self) -> None:
        self.child.sendcontrol("d")
        try:
            self.wait_exit(10)
        except pexpect.ExceptionPexpect:
            self.child.close(force=True)


def read_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def bare_on_pty(env: Mapping[str, str]) -> tuple[float, float]:
    """Wall seconds of bare Python spawned on a pty like the shell; CPU of ``python -c pass``."""
    pty = Pty([PYTHON, "-c", "pass"], env)
    return pty.wait_exit() - pty.spawned, run_child(BARE, env).cpu


def shell_ready(
    env: Mapping[str, str], argv: Sequence[str] | None = None
) -> tuple[float, float, int]:
    """Wall seconds to the prompt, CPU seconds used by then, RSS (KiB) at that moment.

    ``argv`` runs another program that draws the same prompt sign (the stack's least
    prompt); by default, ``cortan chat``.
    """
    pty = Pty(argv or [*cortan_command(), "chat"], env)
    seen = pty.wait_for(PROMPT)
    cpu, rss = process_cpu(pty.pid), pty.rss_kib()
    pty.leave()
    return seen - pty.spawned, cpu, rss


def keystroke_echoes(env: Mapping[str, str]) -> tuple[float, float]:
    """Seconds from a key sent to its echo: at once after the prompt appears, and when idle.

    The first key lands while the provider SDKs and the model list load in the
    background (issue 7: that must never delay it); the second once all is quiet.
    """
    pty = Pty([*cortan_command(), "chat"], env)
    pty.wait_for(PROMPT)
    sent = time.monotonic()
    pty.child.send(KEY)
    first = pty.wait_for(KEY) - sent
    pty.settle()
    sent = time.monotonic()
    pty.child.send(KEY)
    idle = pty.wait_for(KEY) - sent
    pty.child.send(b"\x15")  # Ctrl-U: clear the line, so that Ctrl-D leaves
    pty.leave()
    return first, idle


def imports_before_prompt(
    env: Mapping[str, str], log: Path
) -> tuple[list[str], list[str], list[str]]:
    """Top-level packages imported before the prompt was drawn, and after (until exit);
    and every module imported before the prompt."""
    pty = Pty([PYTHON, "-c", IMPORT_LOG, str(log), "chat"], env)
    seen = pty.wait_for(PROMPT)
    pty.settle()
    pty.leave()
    entries = json.loads(log.read_text())
    modules = [name for t, name in entries if t <= seen]
    before = sorted({name.split(".")[0] for name in modules})
    after = sorted({name.split(".")[0] for t, name in entries if t > seen} - set(before))
    return before, after, modules


def ask(pty: Pty, prompt: str, timeout: float = 120) -> None:
    """Type ``prompt``; wait for the answer's closing status line and the prompt after it."""
    pty.child.send(prompt.encode() + b"\r")
    pty.wait_for(STATUS_LINE, timeout)
    pty.wait_for(PROMPT)


def memory_after_answers(
    server: TimedOllama, env: Mapping[str, str], log: Path
) -> dict[str, float]:
    """Idle RSS after a first (2k-token) answer and its baseline; what three 32k answers add.

    The first long answer also pays once for what stays bounded afterwards: the lexers of
    the languages it shows, rich's caches and SQLite's page cache filling to their bounds;
    the next ones show what an answer itself costs.
    """
    pty = Pty([PYTHON, "-c", IMPORT_LOG, str(log), "chat"], env)
    pty.wait_for(PROMPT)
    server.queue(Reply(pieces=pieces_of(make_answer(2_000, seed=1))))
    ask(pty, "a first question")
    idle = pty.settle()
    sizes, rss = [], [idle]
    for seed in (7, 8, 9):
        answer = make_answer(32_000, seed=seed)
        server.queue(Reply(pieces=pieces_of(answer)))
        ask(pty, "a long one")
        sizes.append(len(answer.encode()))
        rss.append(pty.settle())
    pty.leave()
    loaded = [name for _, name in json.loads(log.read_text())]
    return {
        "idle_kib": idle,
        "baseline_kib": same_libraries_rss(loaded, env),
        "after_32k_kib": rss[1],
        "after_second_32k_kib": rss[2],
        "after_third_32k_kib": rss[3],
        "first_32k_bytes_per_byte": (rss[1] - rss[0]) * 1024 / sizes[0],
        "second_32k_bytes_per_byte": (rss[2] - rss[1]) * 1024 / sizes[1],
        "third_32k_bytes_per_byte": (rss[3] - rss[2]) * 1024 / sizes[2],
    }


def same_libraries_rss(loaded: list[str], env: Mapping[str, str]) -> int:
    """RSS (KiB) of bare Python that imported every module the shell loaded, except cortan's."""
    modules = sorted({m for m in loaded if m.split(".")[0] not in ("cortan", "tests")})
    proc = subprocess.Popen(
        [PYTHON, "-c", SAME_LIBRARIES, *modules],
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.readline()
    rss = read_rss_kib(proc.pid)
    proc.stdin.close()
    proc.wait(10)
    return rss


def main(repeat: int = REPEAT) -> dict[str, Any]:
    with (
        TimedOllama() as server,
        tempfile.TemporaryDirectory() as tmp,
        isolated_env(
            OLLAMA_HOST=server.url,
            CORTAN_DEFAULT_MODEL=f"ollama:{MODEL}",
            PROMPT_TOOLKIT_NO_CPR="1",
            COLUMNS=str(COLS),
            LINES=str(ROWS),
        ) as env,
    ):
        bare_on_pty(env), shell_ready(env)  # warm the disk cache and the store
        bare, ready, keys, stack_prompt = [], [], [], []
        for _ in range(repeat):
            bare.append(bare_on_pty(env))
            ready.append(shell_ready(env))
            keys.append(keystroke_echoes(env))
            least = [PYTHON, "-c", STACK_PROMPT, str(Path(tmp, "history"))]
            stack_prompt.append(shell_ready(env, least)[2])
        before, after, modules = imports_before_prompt(env, Path(tmp, "imports.json"))
        memory = memory_after_answers(server, env, Path(tmp, "memory.json"))
        memory["prompt_baseline_kib"] = same_libraries_rss(modules, env)
        memory["stack_floor_kib"] = same_libraries_rss(STACK_FLOOR, env)
        memory["stack_prompt_kib"] = median(stack_prompt)
    return figures(bare, ready, keys, before, after, memory, repeat)


def figures(
    bare: list[tuple[float, float]],
    ready: list[tuple[float, float, int]],
    keys: list[tuple[float, float]],
    before: list[str],
    after: list[str],
    memory: dict[str, float],
    repeat: int,
) -> dict[str, Any]:
    bare_wall, bare_cpu = (1000 * median([b[i] for b in bare]) for i in (0, 1))
    wall, cpu = (1000 * median([r[i] for r in ready]) for i in (0, 1))
    rss = median([r[2] for r in ready]) / 1024
    heavy = [name for name in HEAVY if name in before]
    out = [
        Figure("python -c pass on a pty (baseline)", bare_wall, "ms"),
        Figure("cortan chat: prompt ready", wall, "ms", bare_wall, "bare", 25.0),
        Figure("cortan chat: CPU used by the prompt", cpu, "ms CPU", bare_cpu, "bare CPU"),
        Figure("cortan chat: RSS at the prompt", rss, "MiB", target=40.0),
        Figure(
            "first keystroke's echo, as the SDKs load",
            1000 * median([k[0] for k in keys]),
            "ms",
            1000 * median([k[1] for k in keys]),
            "idle echo",
        ),
        Figure(
            "cortan chat: RSS at the prompt, vs its libraries",
            rss,
            "MiB",
            memory["prompt_baseline_kib"] / 1024,
            "the same libraries imported",
        ),
        Figure(
            "cortan chat: RSS at the prompt, vs the stack's floor",
            rss,
            "MiB",
            memory["stack_floor_kib"] / 1024,
            "pydantic-settings, prompt_toolkit, Typer imported",
        ),
        Figure(
            "cortan chat: RSS at the prompt, vs the stack's least prompt",
            rss,
            "MiB",
            memory["stack_prompt_kib"] / 1024,
            "a PromptSession prompt, the same three imported",
        ),
        Figure("openai/ollama/keyring loaded before prompt", len(heavy), "modules", target=0),
        Figure(
            "idle RSS after the first answer",
            memory["idle_kib"] / 1024,
            "MiB",
            memory["baseline_kib"] / 1024,
            "same libraries",
            1.3,
        ),
        Figure(
            "RSS added by a 32k-token answer, per byte",
            memory["first_32k_bytes_per_byte"],
            "B/B",
            target=4.0,
        ),
        Figure(
            "RSS added by a second 32k answer, per byte",
            memory["second_32k_bytes_per_byte"],
            "B/B",
        ),
        Figure(
            "RSS added by a third 32k answer, per byte", memory["third_32k_bytes_per_byte"], "B/B"
        ),
    ]
    extra = {"before_prompt": before, "after_prompt": after, "memory": memory, "repeat": repeat}
    if heavy:
        print(f"  loaded before the prompt: {heavy}")
    return report(f"REPL: median of {repeat} runs in a {COLS}x{ROWS} pty", out, **extra)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else REPEAT)
