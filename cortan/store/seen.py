"""Names already seen in a stream, and where: a set on disk, for millions of them.

Layer: store (stdlib ``sqlite3`` only). ``cortan batch`` refuses an input where two
items carry one id (:func:`cortan.batch.inputs.check_ids`): their output lines could
not be told apart. The input is read as a stream, a million lines for the memory of a
few hundred; a set of a million ids in memory would cost about 100 MB. A private
temporary SQLite database (a file SQLite deletes when it is closed, never the session
store) costs its page cache, whatever the count.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from cortan.core.errors import StoreError

#: Pages of the temporary database kept in memory (negative: KiB).
CACHE_KIB = 2048


class SeenNames:
    """Each name added, with the place it was first seen; close it when done."""

    def __init__(self) -> None:
        with _translated():
            # "": a temporary database on disk, private to this connection
            self._conn = sqlite3.connect("", isolation_level=None)
            self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self._conn.execute("PRAGMA journal_mode = OFF")
            self._conn.execute(
                "CREATE TABLE seen (name TEXT PRIMARY KEY, place TEXT NOT NULL) WITHOUT ROWID"
            )
            self._conn.execute("BEGIN")  # one transaction: nothing here outlives the process

    def add(self, name: str, place: str) -> str | None:
        """Remember ``name`` as seen at ``place``; the place it was seen first, if it was."""
        with _translated():
            try:
                self._conn.execute("INSERT INTO seen VALUES (?, ?)", (name, place))
            except sqlite3.IntegrityError:
                row = self._conn.execute("SELECT place FROM seen WHERE name = ?", (name,))
                return str(row.fetchone()[0])
        return None

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """sqlite3's errors as one sentence: the temporary file lives in the temp folder."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot keep the input's ids in a temporary file ({exc}): is the temp folder "
            "(TMPDIR) full or read-only?"
        ) from exc
