"""Windows that servers named in a refusal, kept between runs (issue 21)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from cortan.core.errors import StoreError
from cortan.store import get_store_path
from cortan.store.db import describe_store
from cortan.store.schema import LATEST_VERSION
from cortan.store.windows import WindowStore
from tests.store.test_db import build_at_version


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def windows(tmp_path: Path, clock: Clock) -> Iterator[WindowStore]:
    store = WindowStore(tmp_path / "data", max_age=3600, clock=clock)
    yield store
    store.close()


def test_looking_up_creates_no_store(windows: WindowStore) -> None:
    """A run that never overflowed leaves no file behind (``log = false`` users)."""
    assert windows.recall("openai:m@http://h/v1") is None
    assert not windows.path.exists()


def test_a_window_is_kept_replaced_and_kept_apart_per_server(
    windows: WindowStore, clock: Clock
) -> None:
    windows.remember("openai:m@http://a/v1", 2048, 2.1)
    windows.remember("openai:m@http://b/v1", 4096, None)
    windows.remember("openai:m@http://a/v1", 1024, 2.3)
    assert windows.recall("openai:m@http://a/v1") == (1024, 2.3)
    assert windows.recall("openai:m@http://b/v1") == (4096, None)
    assert windows.recall("openai:m@http://c/v1") is None
    again = WindowStore(windows.path.parent, clock=clock)  # another process
    try:
        assert again.recall("openai:m@http://a/v1") == (1024, 2.3)
    finally:
        again.close()


def test_a_window_past_its_age_is_believed_no_more(windows: WindowStore, clock: Clock) -> None:
    """A server restarted with a larger -c is believed again after a while."""
    windows.remember("old", 2048, 2.0)
    clock.now += 3599
    assert windows.recall("old") == (2048, 2.0)
    clock.now += 2
    assert windows.recall("old") is None
    windows.remember("new", 100, None)  # a write sweeps what is too old
    with closing(sqlite3.connect(windows.path)) as conn:
        assert conn.execute("SELECT model FROM model_windows").fetchall() == [("new",)]


def test_an_older_store_gains_the_table(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build_at_version(get_store_path(data), 7).close()
    store = WindowStore(data)
    try:
        assert store.recall("k") is None  # migrated on opening
        store.remember("k", 512, None)
        assert store.recall("k") == (512, None)
    finally:
        store.close()
    assert describe_store(get_store_path(data)).schema_version == LATEST_VERSION


def test_a_file_that_is_not_a_store_is_one_sentence(tmp_path: Path) -> None:
    path = get_store_path(tmp_path / "data")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not sqlite at all, " * 100)
    store = WindowStore(path.parent)
    with pytest.raises(StoreError, match="not a cortan session store"):
        store.recall("k")
    with pytest.raises(StoreError, match="not a cortan session store"):
        store.remember("k", 1, None)
    assert path.read_bytes() == b"not sqlite at all, " * 100
