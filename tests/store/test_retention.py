"""Giving a pruned store's space back to the disk (``cortan.store.retention``)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from cortan.store import SessionStore, get_store_path
from cortan.store.retention import VACUUM_WHOLE_MAX
from tests.store.populate import populate


def test_a_new_store_frees_pages_a_step_at_a_time(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path) as store, sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


def test_pruning_most_of_a_store_shrinks_its_file_and_index(tmp_path: Path) -> None:
    path = populate(tmp_path, messages=4000, per_conversation=2)  # dated a second apart
    with SessionStore.open(tmp_path) as store:
        gone = store.prune(time.time() - 400)  # the newest 200 exchanges stay
        space = store.reclaim_space()
        assert (gone.conversations, gone.messages) == (1800, 3600)
        assert store.count_conversations() == 200
    assert space.after < 0.25 * space.before
    assert path.stat().st_size == space.after


def test_an_older_store_is_vacuumed_once_and_becomes_incremental(tmp_path: Path) -> None:
    path = populate(tmp_path, messages=4000, per_conversation=2)
    with sqlite3.connect(path, isolation_level=None) as conn:  # as older cortans made it
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
    with SessionStore.open(tmp_path) as store:
        store.prune(time.time() - 400)
        space = store.reclaim_space()
    assert space.after < 0.25 * space.before
    with sqlite3.connect(get_store_path(tmp_path)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2


def test_an_older_store_too_large_to_rewrite_is_left_and_says_so(tmp_path: Path) -> None:
    """An older store's one VACUUM holds every writer back for as long as it rewrites
    what is kept: past a running gateway's 5 s busy timeout its writes would be lost.
    Past VACUUM_WHOLE_MAX kept, the free space is left and counted instead."""
    path = populate(tmp_path, messages=40_000, per_conversation=2)  # ~14 MB to prune
    with sqlite3.connect(path, isolation_level=None) as conn:  # as older cortans made it
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("CREATE TABLE kept (data BLOB)")  # what the store keeps, in bulk
        conn.execute("INSERT INTO kept VALUES (zeroblob(?))", (VACUUM_WHOLE_MAX + (1 << 20),))
        conn.execute("VACUUM")
    with SessionStore.open(tmp_path) as store:
        store.prune(time.time() - 400)
        space = store.reclaim_space()
    assert space.after == space.before
    assert space.left > 0
    with sqlite3.connect(get_store_path(tmp_path)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0  # not rewritten
