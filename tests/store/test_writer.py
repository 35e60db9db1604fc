"""The gateway's store writer: writes on a thread of their own, in order, in groups."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from cortan.core.errors import StoreError
from cortan.store import SessionStore
from cortan.store.writer import Writer


def seen_by_another_process(data: Path) -> list[str | None]:
    with SessionStore.open(data) as other:
        return [c.client for c in reversed(other.list_conversations())]


def test_writes_run_in_order_off_the_callers_thread_and_close_commits_them(
    tmp_path: Path,
) -> None:
    store = SessionStore.open(tmp_path / "data")
    lost: list[StoreError] = []
    Writer(store, seconds=60, on_lost=lost.append)  # a group that only closing commits
    threads: set[str] = set()
    for n in range(50):

        def write(n: int = n) -> None:
            threads.add(threading.current_thread().name)
            store.create(client=f"c{n}")

        store.writer.submit(write)  # type: ignore[union-attr]
    store.close()
    assert threads == {"cortan-store"}
    assert seen_by_another_process(tmp_path / "data") == [f"c{n}" for n in range(50)]
    assert lost == []


def test_flush_commits_what_was_handed_over(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "data") as store:
        writer = Writer(store, seconds=60, on_lost=lambda exc: None)
        writer.submit(lambda: store.create(client="a"))
        assert writer.flush()
        assert seen_by_another_process(tmp_path / "data") == ["a"]
        writer.submit(lambda: store.create(client="b"))
    assert seen_by_another_process(tmp_path / "data") == ["a", "b"]


def test_a_group_is_committed_when_its_time_is_up(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "data") as store:
        committed = threading.Event()
        writer = Writer(store, seconds=0.01, on_lost=lambda exc: None)
        original = store.commit

        def commit() -> None:
            original()
            committed.set()

        store.commit = commit  # type: ignore[method-assign]
        writer.submit(lambda: store.create(client="a"))
        assert committed.wait(5), "the group was never committed"
        assert seen_by_another_process(tmp_path / "data") == ["a"]


def test_a_failing_write_is_reported_and_the_others_are_kept(tmp_path: Path) -> None:
    lost: list[StoreError] = []
    with SessionStore.open(tmp_path / "data") as store:
        Writer(store, seconds=60, on_lost=lost.append)
        assert store.writer is not None

        def fails() -> None:
            with store.batch():
                store.create(client="half")
                raise StoreError("the disk is full")

        def bug() -> None:
            raise ZeroDivisionError

        for job in (lambda: store.create(client="before"), fails, bug):
            store.writer.submit(job)
        store.writer.submit(lambda: store.create(client="after"))
    assert [str(e) for e in lost] == ["the disk is full"]
    assert seen_by_another_process(tmp_path / "data") == ["before", "after"]


def test_the_caller_never_waits_for_a_slow_disk(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "data") as store:
        writer = Writer(store, seconds=60, on_lost=lambda exc: None)
        disk = threading.Event()
        writer.submit(lambda: disk.wait(10))
        for n in range(100):  # handed over at once, while the disk is stuck
            writer.submit(lambda n=n: store.create(client=str(n)))  # type: ignore[misc]
        assert not disk.is_set()
        disk.set()
    assert len(seen_by_another_process(tmp_path / "data")) == 100


def test_room_holds_a_request_while_the_backlog_is_full_and_lets_it_go_under_it(
    tmp_path: Path,
) -> None:
    """Past ``max_backlog`` writes waiting, new requests wait for the thread (without
    blocking their event loop) until it is under the bound again; the writes are all kept."""
    with SessionStore.open(tmp_path / "data") as store:
        writer = Writer(store, seconds=60, on_lost=lambda exc: None, max_backlog=8)
        gate = threading.Event()
        writer.submit(gate.wait)  # the thread is busy: what follows waits behind it
        for n in range(8):

            def write(n: int = n) -> None:
                store.create(client=f"c{n}")

            writer.submit(write)

        async def main() -> tuple[bool, int, int]:
            held = asyncio.create_task(writer.room())
            ticks = 0
            while ticks < 20:  # the loop goes on turning while the request waits
                await asyncio.sleep(0.01)
                ticks += 1
            still_held = not held.done()
            gate.set()
            await asyncio.wait_for(held, 10)
            return still_held, ticks, writer.backlog

        still_held, ticks, backlog = asyncio.run(main())
        assert still_held and ticks == 20
        assert backlog < 8
        assert writer.flush()
        assert len(seen_by_another_process(tmp_path / "data")) == 8
        asyncio.run(writer.room())  # under the bound: at once


def test_a_request_held_for_the_store_whose_client_leaves_is_let_go(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "data") as store:
        writer = Writer(store, seconds=60, on_lost=lambda exc: None, max_backlog=2)
        gate = threading.Event()
        writer.submit(gate.wait)
        writer.submit(lambda: None)

        async def main() -> None:
            held = asyncio.create_task(writer.room())
            await asyncio.sleep(0.05)
            held.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held
            gate.set()  # the writer wakes a future that is already cancelled: no error
            assert writer.flush()

        asyncio.run(main())
