"""The response cache's table: finished answers by key, within a size cap and an age limit.

Layer: store (stdlib ``sqlite3`` only). What goes into a key, and which requests may
be cached at all, is the engine's business (:mod:`cortan.engine.cache`); this module
keeps the answers. It lives in the session store's file (schema version 3), so it
survives like the conversations do and ``cortan cache stats|clear`` find it there.

* An answer older than ``max_age`` seconds is never handed out (it is deleted
  when met, and every write sweeps the expired ones by their index); nor is one dated
  more than ``CLOCK_SKEW`` ahead of the clock, which would otherwise never expire.
* Past ``max_bytes`` the least recently used answers go first. The totals live in
  ``response_cache_size``, kept by triggers, so the check costs one row read, not
  a count of the table. An answer larger than the whole cap is not kept.

Every method is its own short transaction, like :class:`SessionStore`'s, and
raises :class:`cortan.core.errors.StoreError` with one sentence.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from cortan.core.errors import StoreError
from cortan.store.db import (
    StoreFile,
    connect_for,
    exact_text,
    get_store_path,
    transaction,
    translate_errors,
)

#: Bytes counted per entry beyond its text: the key, the names, the numbers.
ROW_OVERHEAD = 100
#: How far ahead of the clock an answer may be dated and still be handed out: another
#: machine's clock sharing the store, or this one's stepped back by a few seconds.
CLOCK_SKEW = 300.0


class CachedAnswer(NamedTuple):
    """One kept answer, as a model once gave it."""

    provider: str
    model: str
    content: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    created: float  # Unix seconds


class CacheStats(NamedTuple):
    """What ``cortan cache stats`` shows."""

    path: Path
    entries: int
    bytes: int
    hits: int
    oldest: float | None
    newest: float | None


class DamagedEntry(StoreError):
    """A kept answer that is not one cortan wrote (a disk error, a hand edit): never
    handed out; it is dropped, and the request asks the model."""


def _read_answer(row: tuple[Any, ...]) -> CachedAnswer | None:
    """The answer in ``row``, or None when a value in it is not what cortan keeps."""
    provider, model, content, finish_reason, prompt, completion, created = row
    text = exact_text(content)
    names = (provider, model, finish_reason)
    counts = (prompt, completion)
    if (
        text is None
        or not all(isinstance(name, str) and name for name in names)
        or not all(count is None or (isinstance(count, int) and count >= 0) for count in counts)
        or not isinstance(created, int | float)
        or not math.isfinite(created)
    ):
        return None
    return CachedAnswer(provider, model, text, finish_reason, prompt, completion, float(created))


#: ``created`` when it is a time a date can show (up to year 9999), else NULL: what a
#: hand edit or a disk error left there is left out of the oldest and newest.
_TIME = (
    "CASE WHEN typeof(created) IN ('integer', 'real')"
    " AND created BETWEEN 0 AND 253402214400 THEN created END"
)


def _read_totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """The cache's entries and bytes; counted again from the table (and kept) when the
    totals row holds something its triggers never write."""
    row = conn.execute(
        "SELECT entries, bytes FROM response_cache_size"
        " WHERE typeof(entries) = 'integer' AND typeof(bytes) = 'integer'"
        " AND entries >= 0 AND bytes >= 0"
    ).fetchone()
    if row is not None:
        return int(row[0]), int(row[1])
    entries, size = conn.execute(
        "SELECT count(*), CAST(total(size) AS INTEGER) FROM response_cache"
    ).fetchone()
    if not conn.in_transaction:  # a read (stats): count, and leave the fix to a write
        return int(entries), int(size)
    conn.execute("DELETE FROM response_cache_size")
    conn.execute(
        "INSERT INTO response_cache_size (id, entries, bytes) VALUES (1, ?, ?)", (entries, size)
    )
    return int(entries), int(size)


def get_size(content: str) -> int:
    """What an answer counts for against the cap."""
    return len(content.encode("utf-8", "surrogatepass")) + ROW_OVERHEAD


class CacheStore(StoreFile):
    """Kept answers in the SQLite file at ``path``; ``clock`` gives Unix seconds."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn = conn
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._clock = clock

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], float] = time.time,
        reading: bool = False,
    ) -> CacheStore:
        """Open the store in ``data_dir`` (created, 0700/0600, when missing);
        ``reading`` (``cache stats``) as :meth:`SessionStore.open` takes it."""
        path = get_store_path(data_dir)
        conn = connect_for(path, reading=reading)
        return cls(conn, path, max_bytes=max_bytes, max_age=max_age, clock=clock)

    def get(self, key: bytes) -> CachedAnswer | None:
        """The answer kept under ``key``, if there is one young enough; counts the hit."""
        now = self._clock()
        with transaction(self._conn, self.path) as conn:
            row = conn.execute(
                "SELECT provider, model, CAST(content AS BLOB), finish_reason, prompt_tokens,"
                " completion_tokens, created FROM response_cache WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            answer = _read_answer(row)
            if answer is None or not self._fresh(answer, now):
                conn.execute("DELETE FROM response_cache WHERE key = ?", (key,))
            else:
                conn.execute(
                    "UPDATE response_cache SET used = ?, hits = hits + 1 WHERE key = ?",
                    (now, key),
                )
        if answer is None:
            raise DamagedEntry(
                f"an answer kept in the response cache of {self.path} was damaged: "
                "it is dropped and the model asked"
            )
        return answer if self._fresh(answer, now) else None

    def _fresh(self, answer: CachedAnswer, now: float) -> bool:
        """Young enough to hand out. An answer dated ahead of the clock (a clock set back,
        a hand edit) has no age to go by: kept as it is, it would never expire."""
        return now - self.max_age <= answer.created <= now + CLOCK_SKEW

    def put(self, key: bytes, answer: CachedAnswer) -> bool:
        """Keep ``answer`` under ``key`` (replacing what was there); False when too large."""
        size = get_size(answer.content)
        if size > self.max_bytes:
            return False
        now = self._clock()
        with transaction(self._conn, self.path) as conn:
            conn.execute(
                "DELETE FROM response_cache WHERE created < ? OR created > ?",
                (now - self.max_age, now + CLOCK_SKEW),
            )
            _read_totals(conn)  # made right first, if damaged: the triggers add to them
            # An upsert, not INSERT OR REPLACE: a replace deletes without firing the
            # delete trigger (unless recursive triggers are on), and the totals would drift.
            conn.execute(
                "INSERT INTO response_cache (key, provider, model, content, finish_reason,"
                " prompt_tokens, completion_tokens, size, created, used)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " provider = excluded.provider, model = excluded.model,"
                " content = excluded.content, finish_reason = excluded.finish_reason,"
                " prompt_tokens = excluded.prompt_tokens,"
                " completion_tokens = excluded.completion_tokens, size = excluded.size,"
                " created = excluded.created, used = excluded.used, hits = 0",
                (key, *answer[:6], size, answer.created, now),
            )
            self._evict(conn)
        return True

    def _evict(self, conn: sqlite3.Connection) -> None:
        """Drop the least recently used answers until the cache is within its cap."""
        excess = _read_totals(conn)[1] - self.max_bytes
        if excess <= 0:
            return
        doomed: list[tuple[bytes]] = []
        for key, size in conn.execute("SELECT key, size FROM response_cache ORDER BY used"):
            doomed.append((key,))
            excess -= size
            if excess <= 0:
                break
        conn.executemany("DELETE FROM response_cache WHERE key = ?", doomed)

    def stats(self) -> CacheStats:
        """How many answers are kept, their size, how often they were used."""
        with translate_errors(self.path):
            entries, size = _read_totals(self._conn)
            hits, oldest, newest = self._conn.execute(
                f"SELECT total(hits), min({_TIME}), max({_TIME}) FROM response_cache"
            ).fetchone()
        return CacheStats(self.path, entries, size, int(hits), oldest, newest)

    def clear(self, *, provider: str | None = None, model: str | None = None) -> int:
        """Forget kept answers (all, or one provider's or model's); how many went."""
        clauses, params = [], []
        for column, value in (("provider", provider), ("model", model)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with transaction(self._conn, self.path) as conn:
            cursor = conn.execute(f"DELETE FROM response_cache{where}", params)
        return cursor.rowcount
