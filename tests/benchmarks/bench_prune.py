"""Pruning a gateway's year of logs while it runs: ``cortan logs rm --older-than``.

A store holding 100,000 logged exchanges (``tests.store.populate``: a conversation of a
question and its answer each, all but the newest ``--keep`` share older than the age given) is
pruned by a child process that does what the command does (``SessionStore.prune``,
then ``reclaim_space``) and times each step, while a running ``cortan serve`` on the
same store answers requests one after the other. Figures:

* the store's size on disk after the prune, against before;
* deleting, and giving the space back: seconds; both for a store made by this cortan
  (incremental auto-vacuum: freed a step at a time) and for an older one (no
  auto-vacuum: one ``VACUUM``, which also converts it);
* a request's latency (median, 99th percentile, worst) while the prune runs, against
  the same requests before it; every request answered, and every one stored (the
  gateway's writes wait for the lock up to the busy timeout, and must not be lost).

    python -m tests.benchmarks.bench_prune [--exchanges 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.benchmarks.bench_serve import TOKEN
from tests.benchmarks.measure import cortan_command, isolated_env
from tests.store.populate import populate

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
PORT = 19530  # the fake Ollama; the gateway on the next one
# The prune, as `cortan logs rm --older-than 30m --yes` runs it, timed step by step.
PRUNE = """
import json, os, sys, time
from pathlib import Path
from cortan.store import SessionStore
def sizes(path):
    return [os.path.getsize(p) if os.path.exists(p) else 0 for p in (path, f"{path}-wal")]
with SessionStore.open(Path(sys.argv[1])) as store:
    first = sizes(store.path)
    start = time.perf_counter()
    gone = store.prune(time.time() - float(sys.argv[2]))
    deleted = time.perf_counter()
    space = store.reclaim_space()
    done = time.perf_counter()
    last = sizes(store.path)
print(json.dumps({"conversations": gone.conversations, "delete_s": deleted - start,
                  "reclaim_s": done - deleted, "file_wal_before": first,
                  "file_wal_after": last, "before": sum(first), "after": sum(last)}))
"""


async def _requests(url: str, headers: dict[str, str], until: asyncio.Event | int) -> list[float]:
    """Latencies of requests sent one after the other: ``until`` many, or until it is set."""
    times: list[float] = []
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        while (len(times) < until) if isinstance(until, int) else not until.is_set():
            start = time.perf_counter()
            response = await client.post(f"{url}/api/chat", json=BODY)
            assert response.status_code == 200, response.text
            times.append(time.perf_counter() - start)
            await asyncio.sleep(0.005)
    return times


async def _during(
    url: str, headers: dict[str, str], data_dir: Path, age: float
) -> tuple[list[float], Any]:
    done = asyncio.Event()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PRUNE, str(data_dir), str(age), stdout=subprocess.PIPE
    )
    load = asyncio.create_task(_requests(url, headers, done))
    out, _ = await proc.communicate()
    done.set()
    return await load, json.loads(out)


def _start(
    command: list[str], env: dict[str, str], said_on: str
) -> tuple[subprocess.Popen[str], str]:
    """Start a server; its URL, from the first line it says on ``said_on``."""
    proc = subprocess.Popen(command, env=env, text=True, **{said_on: subprocess.PIPE})  # type: ignore[call-overload]
    stream = proc.stdout if said_on == "stdout" else proc.stderr
    assert stream is not None
    line = stream.readline()
    while said_on == "stderr" and "listening on" not in line:
        line = stream.readline()
        assert line, "cortan serve did not start"
    return proc, line.split("listening on ")[-1].strip()


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"n": len(times), "p50_ms": statistics.median(times) * 1e3,
            "p99_ms": p99 * 1e3, "max_ms": ordered[-1] * 1e3}  # fmt: skip


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM conversations").fetchone()[0])


def scenario(exchanges: int, *, old_store: bool, keep: float) -> dict[str, Any]:
    with isolated_env() as env:
        data_dir = Path(env["CORTAN_DATA_DIR"])
        path = populate(data_dir, messages=2 * exchanges, per_conversation=2)
        age = 2 * exchanges * keep  # populate dates one message a second, the last now
        if old_store:  # as cortan made stores before: no auto-vacuum
            with sqlite3.connect(path, isolation_level=None) as conn:
                conn.execute("PRAGMA auto_vacuum = NONE")
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        upstream, upstream_url = _start(
            [sys.executable, "-m", "tests.servers", "ollama", "--model", "m", "--quiet",
             "--port", str(PORT)], env, "stdout")  # fmt: skip
        gateway, url = _start(
            [*cortan_command(), "serve", "--port", str(PORT + 1), "--quiet"],
            {**env, "CORTAN_PROVIDERS__OLLAMA__KIND": "ollama",
             "CORTAN_PROVIDERS__OLLAMA__HOSTS": f'["{upstream_url}"]',
             "CORTAN_SERVE_TOKEN": TOKEN, "CORTAN_DEFAULT_MODEL": "ollama:m"},
            "stderr")  # fmt: skip
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            baseline = asyncio.run(_requests(url, headers, 300))
            stored_before = _count(path)
            during, prune = asyncio.run(_during(url, headers, data_dir, age))
            time.sleep(0.2)  # the gateway's last grouped commit
            stored = _count(path) - (stored_before - prune["conversations"])
        finally:
            gateway.terminate()
            _, err = gateway.communicate(timeout=30)
            err = err or ""
            upstream.terminate()
            upstream.wait()
        return {
            "old_store": old_store, "kept": keep, "prune": prune,
            "size_ratio": prune["after"] / prune["before"],
            "baseline": _stats(baseline), "during": _stats(during),
            "p50_ratio": statistics.median(during) / statistics.median(baseline),
            "requests_during": len(during), "stored_during": stored,
            "lost_lines": [line for line in err.splitlines() if "store" in line][:3],
        }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=100_000)
    parser.add_argument("--keep", type=float, default=0.01, help="the share left after")
    parser.add_argument("--old-only", action="store_true", help="only the older store")
    args = parser.parse_args()
    for old in (True,) if args.old_only else (False, True):
        print(json.dumps(scenario(args.exchanges, old_store=old, keep=args.keep)))


if __name__ == "__main__":
    main()
