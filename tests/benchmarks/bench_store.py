"""Session store (issue 7, target 6): what logging costs ``ask``, search and open at scale.

* Logging one exchange (≤ 5 ms): ``cortan ask`` against a fake Ollama, with and
  without ``--no-log``, interleaved, and the difference of the medians (wall, so
  the commits count, and CPU). On a shared machine that difference is noisier
  than the target, so the target is judged on its two parts, each measured on
  its own: importing the store's modules (CPU, in a child that already loaded
  what ``ask`` loads first) and writing the exchange through ``SessionStore``
  in-process (open, create, two messages, close; wall).
* ``cortan logs -q WORD`` over 100,000 stored messages (``tests.store.populate``:
  a rare word and a common one), beside the same command over an empty store:
  what the 100,000 messages add must be ≤ 100 ms. The search alone, in-process,
  is shown too.
* Opening a 10,000-message conversation: ``SessionStore.messages`` and the
  history built from them (what continuing it sends), in-process, ≤ 100 ms. The
  shell resumes conversations through the same two calls.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cortan.cli.continuation import to_history
from cortan.core.events import ChatFinished, ChatPrepared
from cortan.core.messages import Message, Usage
from cortan.core.requests import ChatRequest, Trace
from cortan.store import SessionStore
from cortan.store.recorder import Recorder
from tests.benchmarks.measure import (
    Figure,
    Run,
    cortan_command,
    interleave,
    isolated_env,
    median,
    ms,
    report,
    run_child,
)
from tests.servers import FakeOllama
from tests.store.populate import populate

REPEAT = 21
MODEL = "ollama:llama3.2:latest"

# In a fresh interpreter that already loaded what `cortan ask --no-log` loads (the
# continuation planner included: it imports the store only when there is something to
# log or continue), the CPU that importing the store's modules takes (sqlite3
# included), printed in ms.
STORE_IMPORTS = """
import time
import cortan.app, cortan.cli.main, cortan.cli.continuation, cortan.config.settings
import cortan.render.views
start = time.process_time()
import cortan.store, cortan.store.recorder
print((time.process_time() - start) * 1000)
"""


def wall_ms(runs: Sequence[Run]) -> float:
    return ms(median([r.wall for r in runs]))


def cpu_ms(runs: Sequence[Run]) -> float:
    return ms(median([r.cpu for r in runs]))


def timed_ms(action: Callable[[], object], repeat: int) -> float:
    """Median wall milliseconds of ``action`` in this process, after one untimed call."""
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return ms(median(times))


def checked(argv: Sequence[str], env: Mapping[str, str]) -> Callable[[], Run]:
    def run() -> Run:
        done = run_child(argv, env)
        if done.code != 0:
            raise RuntimeError(f"{' '.join(argv[1:])} exited {done.code}")
        return done

    return run


def logging_cost(repeat: int) -> list[Figure]:
    cortan = cortan_command()
    with FakeOllama() as server, isolated_env(OLLAMA_HOST=server.url) as env:
        runs = interleave(
            {
                "no_log": checked([*cortan, "ask", "--no-log", "-m", MODEL, "hi"], env),
                "log": checked([*cortan, "ask", "-m", MODEL, "hi"], env),
            },
            repeat,
        )
        store = SessionStore.open(Path(env["CORTAN_DATA_DIR"]))
        stored = len(store.list_conversations())
        store.close()
    assert stored == repeat + 1, f"expected {repeat + 1} logged conversations, found {stored}"
    with tempfile.TemporaryDirectory() as tmp:
        exchange = timed_ms(lambda: write_exchange(Path(tmp)), repeat)
    imports = median([store_import_ms() for _ in range(repeat)])
    return [
        Figure("cortan ask --no-log (wall)", wall_ms(runs["no_log"]), "ms"),
        Figure("cortan ask (wall)", wall_ms(runs["log"]), "ms"),
        Figure("difference (wall)", wall_ms(runs["log"]) - wall_ms(runs["no_log"]), "ms"),
        Figure("difference (CPU)", cpu_ms(runs["log"]) - cpu_ms(runs["no_log"]), "ms"),
        Figure("importing the store (sqlite3 included)", imports, "ms CPU"),
        Figure("one exchange through SessionStore, in-process", exchange, "ms"),
        Figure(
            "logging one exchange adds (imports + exchange)", imports + exchange, "ms", target=5.0
        ),
    ]


def store_import_ms() -> float:
    done = subprocess.run(
        [sys.executable, "-c", STORE_IMPORTS], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def write_exchange(data_dir: Path) -> None:
    """What the recorder does for one ``ask``."""
    with SessionStore.open(data_dir) as store:
        _exchange(store)


def _exchange(store: SessionStore, **created: str) -> None:
    """The recorder's writes of one exchange: a conversation and its question in one
    write, then the answer in another (``created``: what else the conversation names)."""
    with store.batch():
        conversation = store.create(model=MODEL, **created)
        store.add_message(conversation.id, "user", "hi")
    with store.batch():
        store.add_message(conversation.id, "assistant", "Hello, world!",
                          model="llama3.2:latest", provider="ollama", prompt_tokens=7,
                          completion_tokens=4, duration=0.1)  # fmt: skip


def search_cost(repeat: int) -> list[Figure]:
    cortan = cortan_command()
    with isolated_env() as big, isolated_env() as empty:
        populate(Path(big["CORTAN_DATA_DIR"]), messages=100_000, per_conversation=50)
        populate(Path(empty["CORTAN_DATA_DIR"]), messages=0)
        runs = interleave(
            {
                "empty": checked([*cortan, "logs", "-q", "zebra"], empty),
                "rare": checked([*cortan, "logs", "-q", "zebra"], big),
                "common": checked([*cortan, "logs", "-q", "the"], big),
            },
            repeat,
        )
        store = SessionStore.open(Path(big["CORTAN_DATA_DIR"]))
        rare = timed_ms(lambda: store.search("zebra", 20), repeat)
        common = timed_ms(lambda: store.search("the", 20), repeat)
        store.close()
    empty_ms = wall_ms(runs["empty"])
    return [
        Figure("cortan logs -q zebra, empty store (wall)", empty_ms, "ms"),
        Figure("cortan logs -q zebra, 100k messages (wall)", wall_ms(runs["rare"]), "ms"),
        Figure("cortan logs -q the, 100k messages (wall)", wall_ms(runs["common"]), "ms"),
        Figure(
            "100k messages add to logs -q (rare word)",
            wall_ms(runs["rare"]) - empty_ms,
            "ms",
            target=100.0,
        ),
        Figure(
            "100k messages add to logs -q (common word)",
            wall_ms(runs["common"]) - empty_ms,
            "ms",
            target=100.0,
        ),
        Figure("search 'zebra' in 100k, in-process", rare, "ms"),
        Figure("search 'the' in 100k, in-process", common, "ms"),
    ]


def open_cost(repeat: int) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        populate(data_dir, messages=10_000, per_conversation=10_000)

        def open_conversation() -> None:
            with SessionStore.open(data_dir) as store:
                found = store.latest()
                assert found is not None
                messages = store.messages(found.id)
                assert len(to_history(messages)) == 10_000

        took = timed_ms(open_conversation, repeat)
    return [Figure("open a 10,000-message conversation", took, "ms", target=100.0)]


#: Gateway requests a grouped commit holds in ``grouped_cost`` (about 5 ms of them at
#: 600 requests a second, the group's length in cortan serve).
GROUP = 3
GROUPED_REQUESTS = 1500


def grouped_cost(repeat: int) -> list[Figure]:
    """The store thread's CPU per gateway request (``cortan serve``'s grouped commits),
    against the same rows written by bare SQL in the same groups: what the store's
    layer (savepoints, error translation, the recorder's calls) adds to SQLite's own
    work, the full-text index's included."""
    runs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(max(3, repeat // 4)):  # interleaved: noise hits both
        for bare in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                write = _bare_requests if bare else _stored_requests
                runs[bare].append(write(Path(tmp)))
    return [Figure(
        "store thread CPU per gateway request (grouped commits)", median(runs[False]) * 1000,
        "ms", baseline=median(runs[True]) * 1000, baseline_name="the same rows by bare SQL",
    )]  # fmt: skip


def _stored_requests(data_dir: Path) -> float:
    """Seconds of CPU per request for the gateway recorder's writes of GROUPED_REQUESTS
    requests: the recorder itself, fed the events a request publishes, as the gateway's
    store thread runs it (thread keys and request ids included)."""
    with SessionStore.open(data_dir) as store:
        commits: list[Callable[[], None]] = []
        store.group_commits(lambda _seconds, commit: commits.append(commit), 0.005)
        recorder = Recorder(store, threads=True)
        asked = (Message("user", "hi"),)
        start = time.thread_time()
        for n in range(GROUPED_REQUESTS):
            request = ChatRequest(n, "hi", model=MODEL, client="bench", trace=Trace(str(n), ""))
            recorder.on_prepared(ChatPrepared(request, MODEL, asked))
            recorder.on_ended(
                ChatFinished(n, "ollama", "llama3.2:latest", "Hello, world!", "stop", USAGE)
            )
            if n % GROUP == GROUP - 1:
                while commits:
                    commits.pop()()
        while commits:
            commits.pop()()
        return (time.thread_time() - start) / GROUPED_REQUESTS


USAGE = Usage(7, 4)
THREAD = bytes(32)  # a thread key's size (SHA-256)


def _bare_requests(data_dir: Path) -> float:
    """The same rows by plain INSERTs and UPDATEs on the same schema, committed in the
    same groups: SQLite's part of ``_stored_requests``."""
    with SessionStore.open(data_dir) as store:
        conn = store._conn
        start = time.thread_time()
        for n in range(GROUPED_REQUESTS):
            if n % GROUP == 0:
                conn.execute("BEGIN IMMEDIATE")
            now = time.time()
            conversation = conn.execute(
                "INSERT INTO conversations (created, updated, model, client, request_id, title)"
                " VALUES (?, ?, ?, 'bench', ?, 'hi')", (now, now, MODEL, str(n)),
            ).lastrowid  # fmt: skip
            for role, content, thread in (
                ("user", "hi", None),
                ("assistant", "Hello, world!", THREAD),
            ):
                conn.execute(
                    "INSERT INTO messages (conversation_id, role, content, created, request_id)"
                    " VALUES (?, ?, ?, ?, ?)", (conversation, role, content, now, str(n)),
                )  # fmt: skip
                conn.execute("UPDATE conversations SET updated = ?, thread = ? WHERE id = ?",
                             (now, thread, conversation))  # fmt: skip
            if n % GROUP == GROUP - 1:
                conn.execute("COMMIT")
        if conn.in_transaction:
            conn.execute("COMMIT")
        return (time.thread_time() - start) / GROUPED_REQUESTS


def main(repeat: int = REPEAT) -> dict[str, Any]:
    figures = [
        *logging_cost(repeat),
        *grouped_cost(repeat),
        *search_cost(repeat),
        *open_cost(repeat),
    ]
    return report(f"store: medians of {repeat} runs", figures, repeat=repeat)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else REPEAT)
