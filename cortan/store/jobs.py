"""Batch jobs in the store: which items of a job ended, how, and the line written for each.

Layer: store (stdlib ``sqlite3`` only). ``cortan batch`` (:mod:`cortan.batch.runner`)
finds its job here by a key made from the command that started it, and commits each
item the moment it ends, in its own transaction: a process killed at any instant
(``kill -9``) loses only the items that were in flight, and running the same command
again skips every item that committed (asking none of them twice) and writes the
kept line for it instead.

An item is known by its place in the input (``position``, from 0) and a fingerprint
of its whole request; a kept state counts only while the fingerprint matches, so an
input edited between two runs re-runs exactly the items that changed.

One process runs a job at a time: :meth:`JobStore.claim` records its pid, which
then beats (:meth:`JobStore.beat`) while it runs, and a second run of the same
command is refused while that process lives and beats. One killed with ``kill -9``
leaves its pid behind: the next run sees it gone, or silent (its pid taken since by
another program), and takes the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple, Self

from cortan.store.db import (
    StoreFile,
    connect,
    exact_text,
    get_store_path,
    transaction,
    translate_errors,
)

ItemStatus = Literal["done", "failed"]


class Job(NamedTuple):
    """One batch job: the command it belongs to (``key``), where its input came from."""

    id: int
    key: str
    name: str | None
    source: str
    created: float
    updated: float


class ItemState(NamedTuple):
    """How an item of a job ended, and the output line it was given.

    A row cortan would never write (a hand edit, a disk error) reads back as what it
    can be trusted for: a ``status`` not cortan's is None, and so is an ``output``
    that is not UTF-8 text, so that the runner asks such an item again rather than
    write a wrong line for it.
    """

    fingerprint: bytes
    status: ItemStatus | None
    output: str | None


#: The largest pid a process can have (``os.kill`` takes a C int).
MAX_PID = 2**31 - 1


class JobCounts(NamedTuple):
    done: int
    failed: int


class JobStore(StoreFile):
    """Batch jobs and their items in the SQLite file at ``path``."""

    @classmethod
    def open(cls, data_dir: Path, *, clock: Callable[[], float] = time.time) -> Self:
        """Open the store in ``data_dir``, creating folder (0700) and file (0600) if needed."""
        path = get_store_path(data_dir)
        return cls(connect(path), path, clock=clock)

    # -- jobs ---------------------------------------------------------------------------

    def get(self, key: str) -> Job | None:
        with translate_errors(self.path):
            row = self._conn.execute(
                "SELECT id, key, name, source, created, updated FROM batch_jobs WHERE key = ?",
                (key,),
            ).fetchone()
        return Job(*row) if row else None

    def start(self, key: str, *, name: str | None, source: str) -> Job:
        """The job for ``key``, made now if there is none; its time of use is updated."""
        now = self._clock()
        with transaction(self._conn, self.path) as conn:
            conn.execute(
                "INSERT INTO batch_jobs (key, name, source, created, updated)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET updated = excluded.updated",
                (key, name, source, now, now),
            )
        job = self.get(key)
        assert job is not None
        return job

    def claim(
        self, job_id: int, pid: int, is_alive: Callable[[int], bool], *, silent_after: float
    ) -> int | None:
        """Make process ``pid`` the job's runner; the pid of another that still runs it
        (alive, and beating within ``silent_after`` seconds)."""
        now = self._clock()
        with transaction(self._conn, self.path) as conn:
            # Only a pid a process can have, and a beat that is a time not far from now:
            # anything else in the row (a hand edit, a disk error) holds the job for nobody.
            owner, beat = conn.execute(
                "SELECT CASE WHEN typeof(owner) = 'integer' AND owner BETWEEN 1 AND ?2"
                " THEN owner END, CASE WHEN typeof(beat) IN ('integer', 'real') THEN beat END"
                " FROM batch_jobs WHERE id = ?1",
                (job_id, MAX_PID),
            ).fetchone()
            beating = beat is not None and now - silent_after < beat < now + silent_after
            if owner not in (None, pid) and beating and is_alive(owner):
                return int(owner)
            conn.execute(
                "UPDATE batch_jobs SET owner = ?, beat = ? WHERE id = ?", (pid, now, job_id)
            )
        return None

    def beat(self, job_id: int, pid: int) -> None:
        """Process ``pid`` still runs the job."""
        with transaction(self._conn, self.path) as conn:
            conn.execute(
                "UPDATE batch_jobs SET beat = ? WHERE id = ? AND owner = ?",
                (self._clock(), job_id, pid),
            )

    def release(self, job_id: int, pid: int) -> None:
        """Process ``pid`` no longer runs the job."""
        with transaction(self._conn, self.path) as conn:
            conn.execute(
                "UPDATE batch_jobs SET owner = NULL WHERE id = ? AND owner = ?", (job_id, pid)
            )

    def forget_items(self, job_id: int) -> int:
        """Forget how every item of the job ended (``--restart``); how many were kept."""
        with transaction(self._conn, self.path) as conn:
            cursor = conn.execute("DELETE FROM batch_items WHERE job_id = ?", (job_id,))
        return cursor.rowcount

    def count(self, job_id: int) -> JobCounts:
        with translate_errors(self.path):
            rows = dict(
                self._conn.execute(
                    "SELECT status, count(*) FROM batch_items"
                    " WHERE job_id = ? AND status IN ('done', 'failed') GROUP BY status",
                    (job_id,),
                ).fetchall()
            )
        return JobCounts(int(rows.get("done", 0)), int(rows.get("failed", 0)))

    # -- items --------------------------------------------------------------------------

    def get_item(self, job_id: int, position: int) -> ItemState | None:
        with translate_errors(self.path):
            # As bytes, whatever the row holds: a number there must not become a buffer
            # that large (bytes(10**14)), nor text that is not UTF-8 stop the whole job.
            row = self._conn.execute(
                "SELECT CAST(fingerprint AS BLOB),"
                " CASE WHEN status IN ('done', 'failed') THEN status END,"
                " CAST(output AS BLOB) FROM batch_items WHERE job_id = ? AND position = ?",
                (job_id, position),
            ).fetchone()
        if row is None:
            return None
        fingerprint, status, output = row
        return ItemState(bytes(fingerprint or b""), status, exact_text(output))

    def record(
        self, job_id: int, position: int, fingerprint: bytes, status: ItemStatus, output: str
    ) -> None:
        """Commit how an item ended: from now on a rerun of the job does not ask it again."""
        with transaction(self._conn, self.path) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batch_items"
                " (job_id, position, fingerprint, status, output, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, position, fingerprint, status, output, self._clock()),
            )
