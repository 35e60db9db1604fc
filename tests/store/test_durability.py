"""The store under real processes: killed mid-write, and several writing at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from cortan.store import SessionStore, get_store_path

# A writer in its own process: one conversation, a message per line of output,
# each printed only after add_message returned (that is, after it was committed).
WRITER = """
import sys
from pathlib import Path
from cortan.store import SessionStore

store = SessionStore.open(Path(sys.argv[1]))
conversation = store.create()
count = int(sys.argv[2])
for i in range(count if count else 10**9):
    message_id = store.add_message(conversation.id, "user", f"{sys.argv[3]} message {i}")
    print(message_id, flush=True)
"""


def start_writer(data_dir: Path, count: int, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), str(count), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_mid_writes_keeps_every_committed_message(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with start_writer(data_dir, 0, "w") as writer:  # writes until killed
        assert writer.stdout is not None
        committed = [int(writer.stdout.readline()) for _ in range(100)]
        writer.kill()
        writer.wait(10)
        committed += [int(line) for line in writer.stdout.read().split()]

    conn = sqlite3.connect(get_store_path(data_dir))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {row[0] for row in conn.execute("SELECT id FROM messages")}
    finally:
        conn.close()
    assert set(committed) <= stored
    with SessionStore.open(data_dir) as store:  # and cortan goes on using it
        assert len(store.search("message")) == 20


def test_processes_writing_at_once_all_succeed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # no store yet: they also race to create it
    writers = [start_writer(data_dir, 100, f"writer{i}") for i in range(4)]
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        assert len(out.split()) == 100
    with SessionStore.open(data_dir) as store:
        conversations = store.list_conversations()
        assert sorted(c.message_count for c in conversations) == [100] * 4
        assert len(store.search("writer2", limit=1000)) == 100
