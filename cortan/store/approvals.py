"""The approval gate's memory: standing grants, and the log of every decision.

Layer: store (stdlib ``sqlite3`` only). The gate (:mod:`cortan.engine.approval`)
decides; this table keeps what it must remember across runs: the yeses a user gave
"always" (listed and revoked by ``cortan grants``) and every decision, allowed or not,
with the exit status of a command that ran (``cortan grants log``). Each write is its
own short transaction: a decision is on disk before what it allowed starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Self

from cortan.core.actions import Action, ActionKind, Grant, Verdict
from cortan.store.db import (
    StoreFile,
    connect_for,
    get_store_path,
    transaction,
    translate_errors,
)
from cortan.store.records import as_optional_text, as_text, as_time


class Decision(NamedTuple):
    """One logged decision, as ``cortan grants log`` shows it."""

    id: int
    at: float
    kind: ActionKind
    name: str
    text: str
    allowed: bool
    by: str
    scope: str | None
    reason: str
    conversation: str | None
    status: int | None


class ApprovalStore(StoreFile):
    """Grants and decisions in the SQLite file at ``path``."""

    @classmethod
    def open(
        cls, data_dir: Path, *, clock: Callable[[], float] = time.time, reading: bool = False
    ) -> Self:
        """Open the store's approval tables; ``reading`` (``grants list``, ``grants log``)
        as :meth:`cortan.store.sessions.SessionStore.open` takes it."""
        path = get_store_path(data_dir)
        return cls(connect_for(path, reading=reading), path, clock=clock)

    # -- grants -------------------------------------------------------------------------

    def add_grant(self, kind: ActionKind, name: str, pattern: str) -> Grant:
        """Keep a yes for ``kind``/``name`` and text fitting ``pattern`` (once, however often)."""
        with transaction(self._conn, self.path) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO grants (kind, name, pattern, created) VALUES (?, ?, ?, ?)",
                (kind, name, pattern, self._clock()),
            )
            row = conn.execute(
                "SELECT id, kind, name, pattern, created FROM grants"
                " WHERE kind = ? AND name = ? AND pattern = ?",
                (kind, name, pattern),
            ).fetchone()
        return _grant(row)

    def list_grants(self, kind: ActionKind | None = None) -> list[Grant]:
        with translate_errors(self.path):
            rows = self._conn.execute(
                "SELECT id, kind, name, pattern, created FROM grants"
                " WHERE ?1 IS NULL OR kind = ?1 ORDER BY id",
                (kind,),
            ).fetchall()
        return [_grant(row) for row in rows]

    def revoke(self, grant_id: int | None) -> int:
        """Remove grant ``grant_id`` (None: every grant); how many went."""
        with transaction(self._conn, self.path) as conn:
            cursor = conn.execute("DELETE FROM grants WHERE ?1 IS NULL OR id = ?1", (grant_id,))
        return cursor.rowcount

    # -- decisions ----------------------------------------------------------------------

    def log(self, action: Action, verdict: Verdict) -> int:
        """Record ``verdict`` on ``action``; its id, for the command's exit status later."""
        with transaction(self._conn, self.path) as conn:
            cursor = conn.execute(
                "INSERT INTO decisions (at, kind, name, text, allowed, decided_by, scope,"
                " reason, conversation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._clock(),
                    action.kind,
                    action.name,
                    action.text,
                    int(verdict.allowed),
                    verdict.by,
                    verdict.scope,
                    verdict.reason,
                    action.conversation,
                ),
            )
        return cursor.lastrowid or 0

    def set_status(self, decision_id: int, status: int) -> None:
        """The exit status of the command that decision ``decision_id`` let run."""
        with transaction(self._conn, self.path) as conn:
            conn.execute("UPDATE decisions SET status = ? WHERE id = ?", (status, decision_id))

    def recent(self, limit: int = 20) -> list[Decision]:
        """The last ``limit`` decisions, oldest first."""
        with translate_errors(self.path):
            rows = self._conn.execute(
                "SELECT id, at, kind, name, text, allowed, decided_by, scope, reason,"
                " conversation, status FROM decisions ORDER BY at DESC, id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_decision(row) for row in reversed(rows)]


def _grant(row: tuple[Any, ...]) -> Grant:
    """A grant as stored; a damaged value read as the nearest one cortan writes (a
    ``kind`` not cortan's is kept as it is: the gate matches it to nothing)."""
    gid, kind, name, pattern, created = row
    return Grant(gid, as_text(kind), as_text(name), as_text(pattern), "always", as_time(created))  # type: ignore[arg-type]


def _decision(row: tuple[Any, ...]) -> Decision:
    """A logged decision; only a stored 1 reads as allowed, a damaged value as refused."""
    did, at, kind, name, text, allowed, by, scope, reason, conversation, status = row
    return Decision(
        did, as_time(at), as_text(kind), as_text(name), as_text(text), allowed == 1,  # type: ignore[arg-type]
        as_text(by), as_optional_text(scope), as_text(reason), as_optional_text(conversation),
        status if isinstance(status, int) else None,
    )  # fmt: skip
