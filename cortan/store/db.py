"""Opening the session store: one SQLite file, checked, configured and migrated.

Layer: store (stdlib ``sqlite3`` only). The caller passes the data folder in; the
store never reads configuration itself.

* The folder is created 0700 and the file 0600 before SQLite touches it (SQLite
  gives its ``-wal`` and ``-shm`` files the database file's mode).
* WAL journal, ``synchronous=NORMAL``: a commit is one append to the log, and a
  process killed at any moment (``kill -9``) leaves every committed transaction
  in place. Only a power cut can drop the last commits, never corrupt the file.
* Incremental auto-vacuum in a new file: the pages a prune frees can be given back
  to the disk a few at a time (``cortan.store.retention``), never by one long
  ``VACUUM`` that holds every writer back.
* A 5 s busy timeout, and writes that take the lock up front (``BEGIN
  IMMEDIATE``), so two cortan processes writing at once both succeed.
* A file that is not a cortan store (not SQLite, or SQLite with someone else's
  tables) is refused with one sentence naming it, *before* anything is written
  to it: cortan never overwrites or deletes a file it did not make.
* A symbolic link or anything but a regular file at the store's path (or at its
  ``-wal`` and ``-shm``) is refused before SQLite opens it, and never followed
  (``cortan.core.files``): a data folder from a repository can plant links.
  SQLite then opens the checked names itself; a link swapped in between those two
  moments needs a process already writing in the data folder.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from cortan.core.errors import StoreError, StoreLockedError, UsageError, why_unreadable
from cortan.core.files import PRIVATE_MODE, NotPrivateFile, describe_mode, open_private, refusal
from cortan.store.records import StoreInfo
from cortan.store.schema import APPLICATION_ID, LATEST_VERSION, MIGRATIONS, TABLES

FILENAME = "cortan.db"
BUSY_TIMEOUT_S = 5.0
_MOVE_ASIDE = "move it aside and cortan will start a new store"


def get_store_path(data_dir: Path) -> Path:
    """The store's file inside cortan's data folder."""
    return data_dir / FILENAME


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if need be) the store at ``path``, migrated to the latest schema."""
    _create_private(path)
    with translate_errors(path):
        # check_same_thread off: the gateway's writes run on a thread of their own
        # (cortan.store.writer), which is then the connection's only user.
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.text_factory = read_text
    try:
        with translate_errors(path):
            check_identity(conn, path)
            conn.execute("PRAGMA foreign_keys = ON")
            _vacuum_incrementally_if_new(conn)
            _use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: Path) -> None:
    """Create the file 0600 (or make an existing one 0600), refusing links and non-files."""
    checking = path
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for checking in (path, *companions(path)):
            _make_private(checking, create=checking == path)
    except NotPrivateFile as exc:
        raise refused(checking, str(exc)) from None
    except (FileExistsError, NotADirectoryError):  # CORTAN_DATA_DIR=/dev/null
        where = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        chosen = (
            " (CORTAN_DATA_DIR names the data folder)" if "CORTAN_DATA_DIR" in os.environ else ""
        )
        raise StoreError(
            f"cannot open the session store {path}: {where} is not a folder{chosen}"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot open the session store {path}: {why_unreadable(exc)}") from None


def _make_private(path: Path, *, create: bool) -> None:
    """Refuse a link or non-file at ``path``; create it (``create``) or make it 0600.

    A file that is already private is only looked at, never opened: closing any
    descriptor of a file drops every POSIX lock this process holds on it, SQLite's
    included. A gateway opening its second connection had left its first with no lock
    on the store, and the next `cortan logs`, taking itself for the store's last user,
    deleted the gateway's live -wal and -shm.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if create:
            os.close(open_private(path, os.O_RDONLY | os.O_CREAT))
        return
    reason = describe_mode(info.st_mode)
    if reason is not None:
        raise NotPrivateFile(reason)
    if stat.S_IMODE(info.st_mode) != PRIVATE_MODE and info.st_uid == os.getuid():
        os.close(open_private(path, os.O_RDONLY))  # sets the mode; before any connection


def companions(path: Path) -> tuple[Path, Path]:
    """SQLite's ``-wal`` and ``-shm`` beside the store: it opens them by name too."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def own_file_at(path: Path, data_dir: Path) -> Path | None:
    """The file of cortan's data folder that ``path`` is (the store, its -wal or -shm,
    the shell history), or None: an output written there would destroy it."""
    store = get_store_path(data_dir)
    for own in (store, *companions(store), data_dir / "history"):
        try:
            if os.path.samefile(path, own):
                return own
        except OSError:  # one of them is not there: not the same file
            continue
    return None


def refused(path: Path, reason: str) -> StoreError:
    """The sentence for a store path that is a link or not a regular file."""
    if path.name.endswith(("-wal", "-shm")):
        what = f"{path}, beside the session store,"
    else:
        what = f"the session store {path}"
    return StoreError(
        f"{what} {reason}: cortan does not follow links or open anything but its own "
        "regular file there; remove it and cortan will start a new store"
    )


def check_not_linked(path: Path) -> None:
    """Refuse a store (or its -wal, -shm) that is a link or not a regular file; read-only."""
    for candidate in (path, *companions(path)):
        reason = refusal(candidate)
        if reason is not None:
            raise refused(candidate, reason)


def _vacuum_incrementally_if_new(conn: sqlite3.Connection) -> None:
    """Make a new, empty file free its pages a step at a time (``cortan.store.retention``).

    Only an empty file, and before WAL: SQLite fixes the mode with the first table, and
    asking it of a store in use writes its header, so waits for any writer's lock.
    """
    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (a no-op once it is).

    Two processes opening a new store at the same moment can both ask; SQLite may then
    refuse one at once, without waiting on the busy timeout: ask again until it passes.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def check_identity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not a cortan store, or is one from a newer cortan; read-only."""
    # One statement, so one snapshot: read one by one, the values could straddle another
    # process's migration (no id yet, but its tables) and look like someone else's file.
    app_id, version, tables = conn.execute(
        "SELECT a.application_id, v.user_version, (SELECT count(*) FROM sqlite_master)"
        " FROM pragma_application_id() AS a, pragma_user_version() AS v"
    ).fetchone()
    if app_id == APPLICATION_ID:
        if version > LATEST_VERSION:
            raise StoreError(
                f"the session store {path} was written by a newer cortan (schema version "
                f"{version}, this one knows {LATEST_VERSION}): upgrade cortan"
            )
        return
    if app_id != 0 or tables or version:
        raise StoreError(
            f"{path} is an SQLite database but not a cortan session store: {_MOVE_ASIDE}"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to the latest version in one transaction (no-op when current)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while this one waited for the lock.
        check_identity(conn, path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for steps in MIGRATIONS[version:]:
            for statement in steps:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def transaction(conn: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """One committed transaction, the write lock taken at its start, errors translated.

    Inside a transaction already open on ``conn`` (a ``batch()`` block), its writes
    join that one.
    """
    with translate_errors(path):
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextmanager
def savepoint(conn: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """Writes inside an open transaction that stand or fall together (a grouped commit)."""
    with translate_errors(path):
        conn.execute("SAVEPOINT w")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO w")
            conn.execute("RELEASE w")
            raise
        conn.execute("RELEASE w")


#: SQLite's largest integer: no row id or count is beyond it.
LARGEST = 2**63 - 1


@contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3's exceptions into one StoreError sentence naming the file, and a
    number past SQLite's 64 bits (``logs -n 10**30``, ``--session '#10**30'``) into a
    usage error: no id or count that large can mean anything stored."""
    try:
        yield
    except sqlite3.Error as exc:
        raise describe_error(exc, path) from exc
    except OverflowError as exc:  # a number typed by the user, bound to a query
        raise UsageError(
            f"a number given is larger than the session store can hold ({LARGEST:,} at most)"
        ) from exc


def describe_error(exc: sqlite3.Error, path: Path) -> StoreError:
    text = str(exc)
    if "file is not a database" in text:
        return StoreError(
            f"{path} is not a cortan session store (not an SQLite database): {_MOVE_ASIDE}"
        )
    if "malformed" in text or "corrupt" in text:
        return StoreError(f"the session store {path} is damaged ({text}): {_MOVE_ASIDE}")
    if "locked" in text or "busy" in text:
        return StoreLockedError(
            f"the session store {path} stayed locked by another process for "
            f"{BUSY_TIMEOUT_S:g} s: try again"
        )
    if "disk is full" in text or ("I/O error" in text and is_full(path)):
        # SQLite says "disk I/O error" for a write the full disk refused (issue 15).
        return StoreError(
            f"the disk holding the session store {path} is full: free some space there"
        )
    if "readonly" in text or "unable to open" in text:
        return StoreError(f"cannot write the session store {path} ({text}): check its permissions")
    return StoreError(f"the session store {path} failed: {text}")


def describe_store(path: Path) -> StoreInfo:
    """Look at a store without changing or creating anything (for ``cortan doctor``).

    ``path`` is the store file, or the data folder that holds (or will hold) it.
    Raises StoreError for a file that is not a cortan store or is damaged.
    """
    if path.name != FILENAME and not path.is_file():
        path = get_store_path(path)
    check_not_linked(path)  # before anything opens it: a FIFO would block doctor for ever
    if not path.exists():
        return StoreInfo(path, exists=False)
    with translate_errors(path), closing(_open_read_only(path)) as conn:
        check_identity(conn, path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        counts = _count_rows(conn) if version else (0, 0)
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return StoreInfo(path, True, version, disk_size(path), counts[0], counts[1], str(journal))


def disk_size(path: Path) -> int:
    """The store's bytes on disk: the file and its write-ahead log."""
    return sum(p.stat().st_size for p in (path, companions(path)[0]) if p.exists())


read_text = functools.partial(str, encoding="utf-8", errors="replace")
"""How the store's text is read: text that is not UTF-8 (a disk error, a hand edit) would
otherwise fail every query that meets it, so one damaged message made a whole
conversation unreadable; its bad bytes read as U+FFFD instead. A C callable: no Python
frame per value. What must be exact (a batch's kept line, a cached answer) is read as
bytes and checked where it is used."""


def exact_text(data: bytes | None) -> str | None:
    """Stored text read as bytes (``CAST(column AS BLOB)``), or None when it is not UTF-8:
    for values that must be exact or not used at all."""
    try:
        return None if data is None else bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write, even where nothing may be written (issue 15).

    In WAL mode SQLite needs the ``-shm`` file even to read; in a folder nobody can
    write (a read-only mount) or on a full disk it cannot make one. Nothing can
    change the file there either, so it is then read as immutable.
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    conn.text_factory = read_text
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if not cannot_write(path):
            raise
    conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S)
    conn.text_factory = read_text
    return conn


def is_writable(path: Path) -> bool:
    """Whether the store file and its folder can be written (a read-only mount says no
    even to root)."""
    folder_ok = os.access(path.parent, os.W_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def is_full(path: Path) -> bool:
    """Whether the file system holding the store's folder has no room left."""
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


def connect_for(path: Path, *, reading: bool = False) -> sqlite3.Connection:
    """:func:`connect`; or, for a command that only reads (``reading``), a read-only
    connection where the store exists but cannot be written (a read-only folder, a
    full disk): reading needs no room, and no rights but to read."""
    if reading and os.path.lexists(path) and cannot_write(path):
        return connect_read_only(path)
    return connect(path)


def cannot_write(path: Path) -> bool:
    """Whether the store cannot be written for want of room or rights, not for a fault
    of its own: then reading commands read it as it is, and ``ask`` answers unstored."""
    return not is_writable(path) or is_full(path)


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing store for reading only: for reading commands where it cannot be
    written. It must be at the latest schema, since it cannot be migrated."""
    check_not_linked(path)
    with translate_errors(path):
        conn = _open_read_only(path)
    try:
        with translate_errors(path):
            check_identity(conn, path)
            conn.execute("PRAGMA query_only = ON")
            if conn.execute("PRAGMA user_version").fetchone()[0] != LATEST_VERSION:
                raise StoreError(
                    f"the session store {path} cannot be written and was made by an older "
                    "cortan: run cortan once where it can be written, to bring it up to date"
                )
    except BaseException:
        conn.close()
        raise
    return conn


def _count_rows(conn: sqlite3.Connection) -> tuple[int, int]:
    conversations, messages = (
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES
    )
    return int(conversations), int(messages)


class StoreFile:
    """One connection to the store file: what every table's store opens, closes and holds.

    Sessions, batch jobs and the response cache are tables of one SQLite file; each of
    their classes extends this one and opens it with :func:`connect` (folder 0700, file
    0600, migrated), so holding and closing the connection are written once.
    """

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
