"""Fill a session store with many messages, fast: for benchmarks and big-store tests.

Rows go in through plain SQL in one transaction (the FTS triggers still fire, so
the search index is real), about 100,000 messages in a few seconds. Text is drawn
from a fixed vocabulary with a seeded generator, so runs are repeatable; the word
``zebra`` appears in about one message in a hundred, ``the`` in most, for searches
of a rare and of a common word.

    python -m tests.store.populate DATA_DIR --messages 100000 --per-conversation 50
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from pathlib import Path

from cortan.store import SessionStore, get_store_path

# fmt: off
WORDS = (
    "the", "a", "of", "to", "and", "in", "is", "it", "that", "for", "on", "with", "as", "was",
    "be", "at", "by", "this", "from", "or", "have", "an", "not", "are", "function", "class",
    "error", "deploy", "server", "request", "model", "answer", "token", "stream", "python",
    "shell", "file", "config", "cache", "test", "build", "commit", "branch", "merge", "docker",
    "kernel", "memory", "thread", "socket", "async",
)
# fmt: on
RARE = "zebra"


def make_text(rng: random.Random, words: int) -> str:
    chosen = rng.choices(WORDS, k=words)
    if rng.random() < 0.01:
        chosen[rng.randrange(words)] = RARE
    return " ".join(chosen)


def populate(data_dir: Path, *, messages: int, per_conversation: int = 50, seed: int = 0) -> Path:
    """Add ``messages`` messages in conversations of ``per_conversation``; returns the file."""
    SessionStore.open(data_dir).close()  # create the file and schema the normal way
    path = get_store_path(data_dir)
    rng = random.Random(seed)
    now = time.time() - messages
    conn = sqlite3.connect(path)
    try:
        with conn:
            _insert(conn, rng, messages, per_conversation, now)
    finally:
        conn.close()
    return path


def _insert(
    conn: sqlite3.Connection, rng: random.Random, messages: int, per: int, start: float
) -> None:
    first = conn.execute("SELECT coalesce(max(id), 0) FROM conversations").fetchone()[0] + 1
    count = -(-messages // per)
    conn.executemany(
        "INSERT INTO conversations (id, created, updated, model) VALUES (?, ?, ?, ?)",
        (
            (first + i, start + i * per, start + (i + 1) * per, "ollama:llama3.2")
            for i in range(count)
        ),
    )
    conn.executemany(
        "INSERT INTO messages (conversation_id, role, content, created, model, provider,"
        " prompt_tokens, completion_tokens, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (_row(rng, first + i // per, i, start) for i in range(messages)),
    )


def _row(rng: random.Random, conversation: int, i: int, start: float) -> tuple[object, ...]:
    if i % 2 == 0:
        return (conversation, "user", make_text(rng, 12), start + i, None, None, None, None, None)
    text = make_text(rng, 60)
    return (conversation, "assistant", text, start + i, "llama3.2", "ollama", 30, 60, 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--per-conversation", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    path = populate(args.data_dir, messages=args.messages, per_conversation=args.per_conversation)
    print(f"{path}: {args.messages} messages in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
