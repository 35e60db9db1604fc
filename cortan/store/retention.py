"""Keeping the session store from growing for ever: pruning by age, giving space back.

Layer: store (stdlib ``sqlite3`` only). ``cortan logs rm --older-than AGE`` deletes
every conversation whose last activity (``conversations.updated``, moved by each
message added) is older than AGE: a conversation still in use keeps its old turns.
What hangs off a conversation goes with it by the schema's cascades and triggers:
its messages, their tool calls and image links, their rows in the full-text index
(whose segments are then merged, see :func:`_merge_index`); images no message shows
any more are dropped after. The approval log
(``decisions``), batch jobs and the response cache are not conversations' and are
left alone (the cache has its own size and age cap).

Deleting runs in short transactions of :data:`CHUNK` conversations, with a pause
between them, so that a gateway logging requests into the same file (its writes
wait up to the busy timeout for the lock) gets the lock between two of them and
never waits for the whole prune. SQLite keeps the pages a delete frees inside the
file: :func:`reclaim` gives them back to the disk (see its docstring for how).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cortan.store.db import disk_size, transaction, translate_errors
from cortan.store.messages import drop_orphan_blobs

#: Conversations deleted per transaction: a gateway's exchange is one conversation of
#: two messages, and 500 of them take some tens of milliseconds to delete.
CHUNK = 500
#: The shortest pause between two chunks. Each pause is as long as the chunk before it
#: held the lock, so a writer waiting in SQLite's busy handler (which sleeps 1, 2, 5, 10,
#: 15, 20, 25... ms between tries) has the lock free half of the time, and a chunk of
#: tens of milliseconds keeps it from sleeping long enough to miss every gap.
PAUSE_S = 0.02
#: Free pages, as a share of the file, past which the space is given back.
RECLAIM_SHARE = 0.25
#: Pages an incremental vacuum frees per transaction (4 MB of 4 KiB pages).
VACUUM_STEP = 1000

#: A bound on the index's merge steps (a step merges whole segments: 4 steps of 0.25 s
#: at most for 100,000 exchanges pruned). A gateway writing meanwhile adds segments
#: as fast as they are merged, so "until nothing is left" alone could run on for ever.
MERGE_STEPS_MAX = 100

_INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental


class Pruned(NamedTuple):
    """What a prune removed, or (``dry_run``) would remove."""

    conversations: int
    messages: int


class Reclaimed(NamedTuple):
    """The store's size on disk (file and write-ahead log) before and after reclaiming;
    ``left``: bytes free inside an older store too large to rewrite while others write."""

    before: int
    after: int
    left: int = 0


#: The most data an older store's one ``VACUUM`` rewrites: writers (a running gateway)
#: wait for it, and past their 5 s busy timeout their writes would be lost. VACUUM
#: rewrote 1.6 MB in 0.16 s here, so this is about 1.6 s.
VACUUM_WHOLE_MAX = 16 << 20


_OLDER = "FROM conversations WHERE updated < ?"


def count_older(conn: sqlite3.Connection, path: Path, before: float) -> Pruned:
    """How many conversations were last active before ``before``, and their messages."""
    with translate_errors(path):
        row = conn.execute(
            f"SELECT (SELECT count(*) {_OLDER}), (SELECT count(*) FROM messages"
            f" WHERE conversation_id IN (SELECT id {_OLDER}))",
            (before, before),
        ).fetchone()
    return Pruned(int(row[0]), int(row[1]))


def delete_older(
    conn: sqlite3.Connection, path: Path, before: float, *, pause: float = PAUSE_S
) -> Pruned:
    """Delete the conversations last active before ``before``, a chunk per transaction."""
    conversations = messages = 0
    for chunk in _chunks(conn, path, before, pause):
        conversations += chunk.conversations
        messages += chunk.messages
    if conversations:
        with transaction(conn, path):
            drop_orphan_blobs(conn)
        _merge_index(conn, path, pause)
    return Pruned(conversations, messages)


def _merge_index(conn: sqlite3.Connection, path: Path, pause: float) -> None:
    """Merge the full-text index's segments, a step per transaction, until done.

    FTS5 deletes by adding tombstones: pruning 99,000 of 100,000 exchanges left the
    index larger than before (17 -> 26 MB, a store of 27 MB for 1 % of its messages).
    Merging drops them (-> 0.2 MB); a negative step merges across all levels.
    """
    for _ in range(MERGE_STEPS_MAX):
        started = time.perf_counter()
        with transaction(conn, path):
            changes = conn.total_changes
            conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', -16)")
            if conn.total_changes - changes < 2:  # FTS5's way of saying "nothing left"
                return
        time.sleep(max(pause, time.perf_counter() - started))


def _chunks(conn: sqlite3.Connection, path: Path, before: float, pause: float) -> Iterator[Pruned]:
    """Delete one chunk per step until none is left; pause between two of them."""
    while True:
        started = time.perf_counter()
        with transaction(conn, path):
            ids = [
                row[0]
                for row in conn.execute(
                    f"SELECT id {_OLDER} ORDER BY updated, id LIMIT ?", (before, CHUNK)
                )
            ]
            if not ids:
                return
            marks = ", ".join("?" * len(ids))
            counted = conn.execute(
                f"SELECT count(*) FROM messages WHERE conversation_id IN ({marks})", ids
            ).fetchone()[0]
            conn.execute(f"DELETE FROM conversations WHERE id IN ({marks})", ids)  # cascades
        yield Pruned(len(ids), int(counted))
        if len(ids) < CHUNK:
            return
        time.sleep(max(pause, time.perf_counter() - started))


def reclaim(conn: sqlite3.Connection, path: Path, *, pause: float = PAUSE_S) -> Reclaimed:
    """Give the store's free pages back to the disk, once they are a quarter of it.

    A store made with incremental auto-vacuum (every store since this module, see
    :func:`cortan.store.db.connect`) frees :data:`VACUUM_STEP` pages per transaction,
    pausing between them as :func:`delete_older` does. An older store is rewritten by
    one ``VACUUM``, which also switches it to incremental auto-vacuum, so this happens
    once: readers go on meanwhile (WAL), writers wait for it, so only while what it
    keeps is under :data:`VACUUM_WHOLE_MAX` (else the free bytes are ``left``). The
    write-ahead log is then truncated, since the pages moved went through it.
    """
    size_before = disk_size(path)
    with translate_errors(path):
        pages, free, mode, page_size = conn.execute(
            "SELECT p.page_count, f.freelist_count, a.auto_vacuum, s.page_size"
            " FROM pragma_page_count() AS p, pragma_freelist_count() AS f,"
            " pragma_auto_vacuum() AS a, pragma_page_size() AS s"
        ).fetchone()
        if pages and free / pages > RECLAIM_SHARE:
            if mode == _INCREMENTAL:
                _vacuum_incrementally(conn, free, pause)
            elif (pages - free) * page_size > VACUUM_WHOLE_MAX:
                return Reclaimed(size_before, size_before, free * page_size)
            else:
                conn.execute(f"PRAGMA auto_vacuum = {_INCREMENTAL}")
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Reclaimed(size_before, disk_size(path))


def _vacuum_incrementally(conn: sqlite3.Connection, free: int, pause: float) -> None:
    """Free ``free`` pages a step at a time (bounded: a step that freed nothing ends it)."""
    for _ in range(free // VACUUM_STEP + 1):
        started = time.perf_counter()
        # executescript: CPython steps a statement that returns no rows only once, and
        # incremental_vacuum frees one page per step (the rest were silently left).
        conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP})")
        if not conn.execute("PRAGMA freelist_count").fetchone()[0]:
            return
        time.sleep(max(pause, time.perf_counter() - started))
