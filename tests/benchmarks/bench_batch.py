"""``cortan batch`` (issue 19): throughput, CPU per item, memory, and a killed job resumed.

Every figure runs the installed ``cortan batch`` in a child process against fake
Ollama servers hosted by this process (so the child's own rusage is cortan's),
each a ratio against a baseline measured in the same run:

* **Throughput.** 4 hosts that each answer 4 requests at a time (``max_parallel``,
  as ``OLLAMA_NUM_PARALLEL=4``), each in a process of its own, each answer a fixed
  number of pieces at a fixed delay per piece: their combined capacity is 16 answers
  per answer's time. cortan is configured with the 4 hosts and ``parallel = 4``;
  items per second are those of the run less its first wave (the wall of N items
  less the wall of 16, start-up included in both). Target: ≥ 0.95 × the capacity,
  for 10,000 items. Beside it, 2,000 items through the client library alone, 16 at
  a time: what the fake hosts actually deliver on the machine (their own cost per
  piece, and a shared machine's load, keep them under their nominal capacity), and
  cortan against that, with the same target.
* **CPU per item.** The child's CPU for N and 3N items against servers that answer
  at once (slopes, so start-up cancels out; the least of the runs of each, since a
  shared machine only adds to CPU time), beside a minimal script that sends the
  same requests through the same client (``ollama.AsyncClient``, 16 at a time over
  the 4 hosts). The difference of the slopes is what cortan spends per item beyond
  the HTTP client's own cost. Target: ≤ 1 ms.
* **Memory flat in the input.** Peak RSS of a job over a 1,000,000-line input
  (read and counted whole, streamed; the first 1,000 items run) beside the same job
  over a 1,000-line input. Target: ≤ 1.05×. Beside it, a job that runs 20,000 items
  whole against one that runs 1,000: what the store, the ordering and the output
  hold per item (nothing, they should).
* **Killed and resumed.** A job killed with SIGKILL half-way, then run again: every
  item counted at the servers and in the output. Targets: 0 committed items asked
  again, 0 items lost (items in flight at the kill are asked again, and counted).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.benchmarks.measure import (
    PYTHON,
    Figure,
    Run,
    cortan_command,
    isolated_env,
    median,
    ms,
    reap,
    report,
    run_child,
)
from tests.servers import FakeOllama, Reply

HOSTS = 4
PARALLEL = 4
# An answer is PIECES pieces, PIECE_DELAY seconds apart: (PIECES - 1) * PIECE_DELAY in all.
# Few pieces, long apart: the fake server's own cost per piece (its event loop, the
# machine's other load) stays small beside the delay it is asked to keep.
PIECES = 5
PIECE_DELAY = 0.05
MODEL = "ollama:llama3.2:latest"
CLIENT_ITEMS = 2_000  # items of the client-alone reference run
PEAK_RSS = Path(__file__).resolve().parents[1] / "peak_rss.py"

# The minimal program for CPU per item: the same requests through the same client.
CLIENT_SCRIPT = """
import asyncio, json, sys
import ollama

async def main(hosts, n, concurrency):
    clients = [ollama.AsyncClient(host=h) for h in hosts]
    queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def work(k):
        client = clients[k % len(clients)]
        while not queue.empty():
            i = queue.get_nowait()
            text = []
            async for part in await client.chat(
                model="llama3.2:latest",
                messages=[{"role": "user", "content": f"p{i}"}],
                stream=True,
            ):
                text.append(part.message.content)
            sys.stdout.write(json.dumps({"id": i, "content": "".join(text)}) + "\\n")

    await asyncio.gather(*(work(k) for k in range(concurrency)))

asyncio.run(main(sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])))
"""


@contextmanager
def servers(*, delay: float, max_parallel: int | None) -> Iterator[list[FakeOllama]]:
    with ExitStack() as stack:
        found = []
        for _ in range(HOSTS):
            server = stack.enter_context(FakeOllama())
            server.max_parallel = max_parallel
            server.default = Reply(pieces=["tok "] * PIECES, delay=delay)
            found.append(server)
        yield found


@contextmanager
def batch_env(hosts: Sequence[FakeOllama], parallel: int) -> Iterator[dict[str, str]]:
    with isolated_env(CORTAN_DEFAULT_MODEL=MODEL) as env:
        urls = ", ".join(f'"{s.url}"' for s in hosts)
        Path(env["CORTAN_CONFIG"]).write_text(
            f'[providers.ollama]\nkind = "ollama"\nhosts = [{urls}]\nparallel = {parallel}\n'
        )
        yield env


def write_input(path: Path, n: int) -> Path:
    with path.open("w") as file:
        for i in range(n):
            file.write(json.dumps({"id": i, "prompt": f"p{i}"}) + "\n")
    return path


def batch(path: Path, env: dict[str, str], *extra: str) -> Run:
    argv = [*cortan_command(), "batch", str(path), "-q", "-o", "/dev/null", *extra]
    return run_child(argv, env)


def reset(hosts: Sequence[FakeOllama]) -> None:
    for server in hosts:
        server.reset()


# -- throughput -----------------------------------------------------------------------


@contextmanager
def server_processes(tmp: Path) -> Iterator[list[str]]:
    """The 4 hosts of the throughput figure, each in a process of its own: in this one,
    sharing its interpreter lock, they could not keep their own pace."""
    pieces = tmp / "pieces.txt"
    pieces.write_text("tok " * PIECES)  # served in pieces of 4 characters
    argv = [PYTHON, "-m", "tests.servers", "ollama", "--quiet", "--pieces-file", str(pieces),
            "--delay", str(PIECE_DELAY), "--max-parallel", str(PARALLEL)]  # fmt: skip
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(HOSTS)
    ]
    try:
        yield [read_url(proc) for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
            proc.communicate(timeout=10)


def read_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def throughput(items: int, repeat: int, tmp: Path) -> list[Figure]:
    """Items per second once started: the wall of N items less the wall of one wave."""
    answer_time = (PIECES - 1) * PIECE_DELAY
    capacity = HOSTS * PARALLEL / answer_time
    wave = HOSTS * PARALLEL
    source = write_input(tmp / "throughput.jsonl", items)
    first = write_input(tmp / "wave.jsonl", wave)
    out = tmp / "throughput-out.jsonl"
    with server_processes(tmp) as urls, isolated_env(CORTAN_DEFAULT_MODEL=MODEL) as env:
        hosts = ", ".join(f'"{url}"' for url in urls)
        Path(env["CORTAN_CONFIG"]).write_text(
            f'[providers.ollama]\nkind = "ollama"\nhosts = [{hosts}]\nparallel = {PARALLEL}\n'
        )
        command = [*cortan_command(), "batch", "-q", "--restart", "-o", str(out)]
        run_child([*command, str(first)], env)  # compiled, cached: as a user runs it
        short = [run_child([*command, str(first)], env).wall for _ in range(repeat)]
        run = run_child([*command, str(source)], env)
        assert run.code == 0, f"cortan batch exited {run.code}"
        written = len(out.read_text().splitlines())
        client = [PYTHON, "-c", CLIENT_SCRIPT, ",".join(urls)]
        alone_short = median(
            [run_child([*client, str(wave), str(wave)], env).wall for _ in range(repeat)]
        )
        sample = min(items, CLIENT_ITEMS)  # a reference: a sample is enough
        alone = run_child([*client, str(sample), str(wave)], env).wall
    assert written == items, f"{written} lines for {items} items"
    rate = (items - wave) / (run.wall - median(short))
    delivered = (sample - wave) / (alone - alone_short)
    return [
        Figure(
            f"items/s, {items} items on {HOSTS}x{PARALLEL} slots",
            rate,
            "items/s",
            baseline=capacity,
            baseline_name="capacity",
            target=0.95,
            higher_is_better=True,
        ),
        Figure(
            f"items/s, {sample} items through the client alone",
            delivered,
            "items/s",
            baseline=capacity,
            baseline_name="capacity",
        ),
        Figure(
            "items/s, cortan against the client alone",
            rate,
            "items/s",
            baseline=delivered,
            baseline_name="client alone",
            target=0.95,
            higher_is_better=True,
        ),
        Figure(f"wall of one wave ({wave} items), start-up included", ms(median(short)), "ms"),
    ]


# -- CPU per item ---------------------------------------------------------------------


def cpu_per_item(n: int, repeat: int, tmp: Path) -> list[Figure]:
    concurrency = HOSTS * PARALLEL
    sizes = (n, 3 * n)
    inputs = {size: write_input(tmp / f"cpu{size}.jsonl", size) for size in sizes}
    cortan: dict[int, list[float]] = {size: [] for size in sizes}
    client: dict[int, list[float]] = {size: [] for size in sizes}
    with servers(delay=0.0, max_parallel=None) as hosts, batch_env(hosts, PARALLEL) as env:
        urls = ",".join(s.url for s in hosts)
        batch(inputs[n], env)  # warm-up
        for _ in range(repeat):
            for size in sizes:
                run = batch(inputs[size], env, "--restart")
                assert run.code == 0, f"cortan batch exited {run.code}"
                cortan[size].append(run.cpu)
                script = [PYTHON, "-c", CLIENT_SCRIPT, urls, str(size), str(concurrency)]
                done = run_child(script, env)
                assert done.code == 0, f"the client script exited {done.code}"
                client[size].append(done.cpu)
                reset(hosts)
    # The least of the runs: a shared machine only ever adds CPU time (contention,
    # caches), so the least is the nearest to what the work itself costs.
    slope = (min(cortan[3 * n]) - min(cortan[n])) / (2 * n)
    base = (min(client[3 * n]) - min(client[n])) / (2 * n)
    return [
        Figure("CPU per item, cortan batch", ms(slope), "ms", baseline=ms(base),
               baseline_name="client alone"),
        Figure("CPU per item beyond the client's", ms(slope - base), "ms", target=1.0),
    ]  # fmt: skip


# -- memory ---------------------------------------------------------------------------


def peak_rss(path: Path, env: dict[str, str], tmp: Path, *extra: str) -> int:
    """The batch's own peak RSS in KiB, measured by tests/peak_rss.py.

    Linux carries a parent's peak into a child across fork and exec: spawned from this
    process (servers, inputs), the child would report this process's peak instead.
    """
    out = tmp / "peak.txt"
    argv = [*cortan_command(), "batch", str(path), "-q", "-o", "/dev/null", *extra]
    run = run_child([PYTHON, str(PEAK_RSS), str(out), *argv], env)
    assert run.code == 0, f"cortan batch exited {run.code}"
    return int(out.read_text())


def memory(big_lines: int, whole: int, repeat: int, tmp: Path) -> list[Figure]:
    small = write_input(tmp / "small.jsonl", 1_000)
    big = write_input(tmp / "big.jsonl", big_lines)
    many = write_input(tmp / "many.jsonl", whole)
    rss: dict[str, list[int]] = {"small": [], "big": [], "many": []}
    with servers(delay=0.0, max_parallel=None) as hosts, batch_env(hosts, PARALLEL) as env:
        for _ in range(repeat):
            for name, path, extra in (
                ("small", small, ()),
                ("big", big, ("--limit", "1000")),
                ("many", many, ()),
            ):
                rss[name].append(peak_rss(path, env, tmp, "--restart", *extra))
                reset(hosts)
    small_mib, big_mib, many_mib = (median(rss[k]) / 1024 for k in ("small", "big", "many"))
    return [
        Figure(f"peak RSS, a {big_lines:,}-line input", big_mib, "MiB",
               baseline=small_mib, baseline_name="1,000 lines", target=1.05),
        Figure(f"peak RSS, {whole:,} items run", many_mib, "MiB",
               baseline=small_mib, baseline_name="1,000 items", target=1.10),
    ]  # fmt: skip


# -- killed and resumed ---------------------------------------------------------------


def killed_and_resumed(items: int, tmp: Path) -> list[Figure]:
    source = write_input(tmp / "resume.jsonl", items)
    out = tmp / "resume-out.jsonl"
    with servers(delay=0.002, max_parallel=PARALLEL) as hosts, batch_env(hosts, PARALLEL) as env:
        argv = [*cortan_command(), "batch", str(source), "-q", "-o", str(out)]
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.perf_counter()
        while sum(len(s.chat_requests) for s in hosts) < items // 2:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        reap(proc, started)
        before = asked(hosts)
        conn = sqlite3.connect(Path(env["CORTAN_DATA_DIR"]) / "cortan.db")
        kept = {row[0] for row in conn.execute("SELECT position FROM batch_items")}
        conn.close()
        rerun = run_child(argv, env)
        assert rerun.code == 0, f"the resumed job exited {rerun.code}"
        after = asked(hosts)
    written = Counter(json.loads(line)["id"] for line in out.read_text().splitlines())
    repeated = sum(1 for p in kept if after[f"p{p}"] > 1)
    lost = sum(1 for i in range(items) if after[f"p{i}"] == 0 or written[i] != 1)
    in_flight = sum(1 for i in range(items) if after[f"p{i}"] > 1 and i not in kept)
    return [
        Figure(f"committed items asked again ({len(kept)} of {items} committed)", repeated,
               "items", target=0),
        Figure("items lost (not asked, or not written once)", lost, "items", target=0),
        Figure("items in flight at the kill, asked again", in_flight, "items"),
        Figure("requests before the kill", sum(before.values()), "requests"),
    ]  # fmt: skip


def asked(hosts: Sequence[FakeOllama]) -> Counter[str]:
    return Counter(r.json["messages"][-1]["content"] for s in hosts for r in s.chat_requests)


def main(
    items: int = 10_000,
    cpu_items: int = 1_000,
    big_lines: int = 1_000_000,
    whole: int = 20_000,
    resume_items: int = 2_000,
    repeat: int = 3,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cortan-bench-batch-") as folder:
        tmp = Path(folder)
        figures = [
            *throughput(items, repeat, tmp),
            *cpu_per_item(cpu_items, repeat, tmp),
            *memory(big_lines, whole, repeat, tmp),
            *killed_and_resumed(resume_items, tmp),
        ]
    return report(
        "batch: items/s against the hosts' capacity, CPU per item, memory, resume",
        figures,
        items=items,
        hosts=HOSTS,
        parallel=PARALLEL,
        answer_s=(PIECES - 1) * PIECE_DELAY,
    )


def quick() -> dict[str, Any]:
    """A smoke run: every figure, on small inputs (the targets are for the full run)."""
    return main(items=300, cpu_items=100, big_lines=50_000, whole=2_000, resume_items=200, repeat=1)


if __name__ == "__main__":
    sys.exit(0 if (quick() if "--quick" in sys.argv else main()) else 1)
