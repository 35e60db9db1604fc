"""How the session store's writes are committed: one transaction each, or grouped.

Layer: store (stdlib ``sqlite3`` only). :class:`CommittingStore` is the plumbing
under :class:`cortan.store.sessions.SessionStore`: every write goes through
:meth:`CommittingStore._write` and every read through ``_read``, so the rules
below are kept in one place and the conversation and message queries above it
only say what they store.

Every write is its own short ``BEGIN IMMEDIATE`` transaction, committed before the
method returns (or, inside ``with store.batch():``, when the block ends), so what a
method stored survives the process being killed the next instant, and a second
cortan process waits its turn (up to the busy timeout) instead of failing. Every
sqlite3 error leaves as a one-sentence StoreError.

Grouped commits (:meth:`CommittingStore.group_commits`, the gateway's): writes then
join one transaction that is committed ``seconds`` after its first write, or when
the store closes. A commit per request cost the gateway a third of a millisecond of
CPU and most of a millisecond of the event loop's time on this machine; grouped,
each write is a savepoint in the open transaction (a write that fails leaves
nothing half-written) and the commit is shared. What a process killed with
``kill -9`` can lose is the last ``seconds`` of writes; SIGTERM and Ctrl-C close the
store, which commits. Other cortan processes wait for the lock as they wait for any
writer, at most ``seconds`` at a time.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from cortan.core.errors import StoreError
from cortan.store.db import StoreFile, savepoint, transaction, translate_errors


class Handoff(Protocol):
    """A thread the store's writes are handed to (:class:`cortan.store.writer.Writer`).

    Named here, not imported, so that the store needs nothing of the module that
    drives it.
    """

    def submit(self, job: Callable[[], object]) -> None: ...

    async def room(self) -> None:
        """Return once the writes waiting are few enough to take another request's."""
        ...

    def flush(self, timeout: float = 30) -> bool: ...

    def close(self) -> None: ...


class CommittingStore(StoreFile):
    """A store file whose writes are committed one transaction each, or in groups."""

    _schedule: Callable[[float, Callable[[], None]], object] | None = None
    _group_seconds = 0.0
    on_lost: Callable[[StoreError], None] | None = None
    """Told when a grouped commit fails (its writes are lost); None raises from the timer."""
    writer: Handoff | None = None
    """Set by :class:`cortan.store.writer.Writer`: writes are handed to its thread."""
    _in_savepoint = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make the writes inside the block one transaction, committed as the block ends.

        For writes that belong together (a new conversation and its first message):
        one commit instead of several, and nothing half-written if one fails.
        """
        with self._write():
            yield

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One committed transaction; the write lock is taken at the start, not mid-way.

        With grouped commits: a savepoint in the group's transaction, begun (and its
        commit scheduled) by the first write.
        """
        if self._schedule is None:
            return transaction(self._conn, self.path)
        if not self._conn.in_transaction:
            with translate_errors(self.path):
                self._conn.execute("BEGIN IMMEDIATE")
            self._schedule(self._group_seconds, self._commit_group)
        return self._savepoint()

    @contextmanager
    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        """The outermost write's savepoint; the writes inside it (``batch()``'s) join it,
        as :func:`cortan.store.db.transaction` joins an open transaction.

        Each savepoint that begins makes SQLite's full-text index write out what it
        holds: with one a call, a gateway request's writes (five savepoints) took the
        store's thread 2.0-2.2x the CPU of the same rows written by bare SQL; with one
        a write (two), 1.4-1.5x (bench_store).
        """
        if self._in_savepoint:
            yield self._conn
            return
        self._in_savepoint = True
        try:
            with savepoint(self._conn, self.path) as conn:
                yield conn
        finally:
            self._in_savepoint = False

    def group_commits(
        self, schedule: Callable[[float, Callable[[], None]], object], seconds: float
    ) -> None:
        """Commit writes together, ``seconds`` after the first of each group.

        ``schedule(seconds, commit)`` arranges the call (an event loop's
        ``call_later``); a commit that fails goes to ``on_lost``.
        """
        self._schedule, self._group_seconds = schedule, seconds

    def _commit_group(self) -> None:
        try:
            self.commit()
        except StoreError as exc:
            if self.on_lost is None:
                raise
            self.on_lost(exc)

    def commit(self) -> None:
        """Commit the writes grouped so far (nothing to do when none are waiting).

        A commit that fails is rolled back and raised: those writes are lost.
        """
        if not self._conn.in_transaction:
            return
        try:
            with translate_errors(self.path):
                self._conn.execute("COMMIT")
        except StoreError:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Commit what is grouped, then close (the writes of a SIGTERM'd gateway are kept)."""
        if self.writer is not None:
            self.writer.close()  # runs and commits what was handed to it
        try:
            if self._schedule is not None:
                with contextlib.suppress(sqlite3.ProgrammingError):  # closed already
                    self.commit()
        finally:
            super().close()

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with translate_errors(self.path):
            return self._conn.execute(sql, params).fetchall()
