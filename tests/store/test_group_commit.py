"""Grouped commits (the gateway's store): shared transactions, savepoints, close commits."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cortan.core.errors import StoreError
from cortan.store import SessionStore


class Timer:
    """The scheduler a loop's ``call_later`` would be: holds the commit until fired."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, seconds: float, call: Callable[[], None]) -> None:
        self.calls.append((seconds, call))

    def fire(self) -> None:
        calls, self.calls = self.calls, []
        for _, call in calls:
            call()


@pytest.fixture
def grouped(tmp_path: Path) -> Iterator[tuple[SessionStore, Timer]]:
    timer = Timer()
    with SessionStore.open(tmp_path / "data") as store:
        store.group_commits(timer, 0.005)
        yield store, timer


def seen_by_another_process(data: Path) -> int:
    with SessionStore.open(data) as other:
        return len(other.list_conversations())


def test_writes_share_one_commit_made_when_the_timer_fires(
    grouped: tuple[SessionStore, Timer], tmp_path: Path
) -> None:
    store, timer = grouped
    for n in range(3):
        with store.batch():
            conversation = store.create(client=f"c{n}")
            store.add_message(conversation.id, "user", "hi")
        store.add_message(conversation.id, "assistant", "hello")
    assert [seconds for seconds, _ in timer.calls] == [0.005]  # one group, one commit
    assert seen_by_another_process(tmp_path / "data") == 0
    timer.fire()
    assert seen_by_another_process(tmp_path / "data") == 3
    store.create(client="next")  # a new group begins with the next write
    assert len(timer.calls) == 1


def test_a_write_that_fails_leaves_nothing_of_itself_and_keeps_the_others(
    grouped: tuple[SessionStore, Timer], tmp_path: Path
) -> None:
    store, timer = grouped
    kept = store.create(client="kept")

    def fail_half_way() -> None:
        with store.batch():
            lost = store.create(client="lost")
            store.add_message(lost.id, "user", "lost")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_half_way()
    timer.fire()
    with SessionStore.open(tmp_path / "data") as other:
        assert [c.id for c in other.list_conversations()] == [kept.id]


def test_a_write_of_several_is_one_savepoint(grouped: tuple[SessionStore, Timer]) -> None:
    """The writes inside ``batch()`` join its savepoint: each savepoint that begins makes
    the full-text index write what it holds, which cost the gateway's store thread."""
    store, _ = grouped
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    with store.batch():
        conversation = store.create(client="c")
        store.add_message(conversation.id, "user", "hi")
    store.add_message(conversation.id, "assistant", "hello")
    store._conn.set_trace_callback(None)
    assert [s for s in statements if s.startswith(("SAVEPOINT", "RELEASE"))] == [
        "SAVEPOINT w", "RELEASE w", "SAVEPOINT w", "RELEASE w",
    ]  # fmt: skip


def test_closing_commits_what_is_grouped(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path / "data")
    store.group_commits(Timer(), 0.005)  # a timer that never fires: only close commits
    store.create(client="c")
    store.close()
    assert seen_by_another_process(tmp_path / "data") == 1


def test_a_commit_that_fails_is_reported_and_rolled_back(
    grouped: tuple[SessionStore, Timer], tmp_path: Path
) -> None:
    store, timer = grouped
    lost: list[StoreError] = []
    store.on_lost = lost.append
    store.create(client="c")
    # A deferred foreign key cannot be checked before the commit: the commit fails.
    store._conn.execute("PRAGMA defer_foreign_keys = ON")
    store._conn.execute(
        "INSERT INTO messages (conversation_id, role, content, created) VALUES (999, 'user', '', 0)"
    )
    timer.fire()
    assert len(lost) == 1 and "failed" in str(lost[0])
    assert seen_by_another_process(tmp_path / "data") == 0
    store.create(client="after")  # the store goes on: a new group
    timer.fire()
    assert seen_by_another_process(tmp_path / "data") == 1


def test_a_killed_process_keeps_every_group_it_committed(tmp_path: Path) -> None:
    script = f"""
import os, signal
from pathlib import Path
from cortan.store import SessionStore
store = SessionStore.open(Path({str(tmp_path / "data")!r}))
commits = []
store.group_commits(lambda s, commit: commits.append(commit), 0.005)
store.create(client="committed")
commits.pop()()
store.create(client="grouped, not yet committed")
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], timeout=30, check=False)
    assert done.returncode == -9
    with SessionStore.open(tmp_path / "data") as other:
        assert [c.client for c in other.list_conversations()] == ["committed"]
