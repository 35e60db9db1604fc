"""Context windows that servers named when they refused a prompt, kept between runs.

Layer: store (stdlib ``sqlite3`` only). A llama.cpp server started with a small ``-c``
refuses a conversation longer than its window and says how long the window is and
how many tokens it counted; the context stage (:mod:`cortan.engine.context`) then
fits the conversation again and asks once more. ``cortan ask --session`` is a new
process each turn, so without this table every later turn would be refused first
and asked again: one wasted request per turn (issue 21). Each row is one model on
one server (the key is the engine's: route and base URLs), with the window and the
estimate's correction factor that were learned, and when.

A row older than ``max_age`` is not handed out: a server restarted with a larger
window is believed again after that, at the cost of one refusal.

The file is opened on first use: a run that never asks finds nothing to read when
there is no store yet and creates none; a store that can only be read still answers
``recall``. Errors are :class:`cortan.core.errors.StoreError`; whether they matter is
the caller's decision (the context stage ignores them: a window not remembered costs
one request, never an answer).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from cortan.core.errors import StoreError
from cortan.store.db import connect, connect_read_only, get_store_path, transaction

#: How long a learned window is believed: a day, then one refusal teaches it again.
MAX_AGE_S = 24 * 3600.0


class WindowStore:
    """Learned windows in the store file of ``data_dir``; ``clock`` gives Unix seconds."""

    def __init__(
        self,
        data_dir: Path,
        *,
        max_age: float = MAX_AGE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = get_store_path(data_dir)
        self.max_age = max_age
        self._clock = clock
        self._conn: sqlite3.Connection | None = None

    def recall(self, key: str) -> tuple[int | None, float | None] | None:
        """The window and factor learned for ``key``, if young enough; None when no store."""
        conn = self._open(create=False)
        if conn is None:
            return None
        with transaction(conn, self.path):
            row = conn.execute(
                "SELECT window, factor FROM model_windows WHERE model = ? AND learned >= ?",
                (key, self._clock() - self.max_age),
            ).fetchone()
        return (row[0], row[1]) if row else None

    def remember(self, key: str, window: int | None, factor: float | None) -> None:
        """Keep what was learned of ``key`` (replacing the older row); stale rows go."""
        conn = self._open(create=True)
        assert conn is not None
        now = self._clock()
        with transaction(conn, self.path):
            conn.execute("DELETE FROM model_windows WHERE learned < ?", (now - self.max_age,))
            conn.execute(
                "INSERT INTO model_windows (model, window, factor, learned) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (model) DO UPDATE SET window = excluded.window,"
                " factor = excluded.factor, learned = excluded.learned",
                (key, window, factor, now),
            )

    def _open(self, *, create: bool) -> sqlite3.Connection | None:
        if self._conn is None:
            if not create and not self.path.exists():
                return None
            try:
                self._conn = connect(self.path)
            except StoreError:
                if create or not self.path.exists():
                    raise
                self._conn = connect_read_only(self.path)  # a read-only mount still recalls
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
