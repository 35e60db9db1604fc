"""The session store: conversations and their messages in one SQLite file.

Layer: store (stdlib ``sqlite3`` only). The REPL, ``cortan ask`` and the
``sessions`` and ``logs`` commands all go through :class:`SessionStore`; the
model layer never calls it (answers reach it through
:class:`cortan.store.recorder.Recorder`, a bus subscriber).

Every write is its own short ``BEGIN IMMEDIATE`` transaction, committed before the
method returns (or, inside ``with store.batch():``, when the block ends), so what a
method stored survives the process being killed the next instant, and a second
cortan process waits its turn (up to the busy timeout) instead of failing. Every
sqlite3 error leaves as a one-sentence StoreError.

Grouped commits (:meth:`SessionStore.group_commits`, the gateway's): writes then
join one transaction that is committed ``seconds`` after its first write, or when
the store closes. A commit per request cost the gateway a third of a millisecond of
CPU and most of a millisecond of the event loop's time on this machine; grouped,
each write is a savepoint in the open transaction (a write that fails leaves
nothing half-written) and the commit is shared. What a process killed with
``kill -9`` can lose is the last ``seconds`` of writes; SIGTERM and Ctrl-C close the
store, which commits. Other cortan processes wait for the lock as they wait for any
writer, at most ``seconds`` at a time.

Names: a conversation may have a unique name (``cortan ask --session work``);
names cannot look like an id (``12``, ``#12``), so ``find`` never has to guess.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Self

from cortan.core.errors import StoreError, UsageError
from cortan.core.images import Image
from cortan.core.text import check_argument
from cortan.store.db import (
    StoreFile,
    connect_for,
    describe_store,
    get_store_path,
    savepoint,
    transaction,
    translate_errors,
)
from cortan.store.records import (
    Conversation,
    Role,
    Status,
    StoredMessage,
    StoredToolCall,
    StoreInfo,
    as_count,
    as_optional_text,
    as_seconds,
    as_text,
    as_time,
)

if TYPE_CHECKING:
    from cortan.core.events import ToolResult


class Handoff(Protocol):
    """A thread the store's writes are handed to (:class:`cortan.store.writer.Writer`).

    Named here, not imported, so that the store needs nothing of the module that
    drives it.
    """

    def submit(self, job: Callable[[], object]) -> None: ...

    def flush(self, timeout: float = 30) -> bool: ...

    def close(self) -> None: ...


MAX_NAME = 100
_ID_LIKE = re.compile(r"#?\d+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TITLE_CHARS = 200

_CONVERSATION = f"""
    SELECT c.id, c.name, c.created, c.updated, c.model, c.system,
        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id),
        coalesce((SELECT substr(m.content, 1, {_TITLE_CHARS}) FROM messages m
                  WHERE m.conversation_id = c.id AND m.role = 'user' ORDER BY m.id LIMIT 1), ''),
        c.client, c.request_id
    FROM conversations c
"""
_MESSAGE_COLUMNS = """m.id, m.conversation_id, m.role, m.content, m.created, m.status,
    m.model, m.provider, m.prompt_tokens, m.completion_tokens, m.duration, m.thinking"""
_LOG = f"""SELECT {_MESSAGE_COLUMNS}, c.name
    FROM messages m JOIN conversations c ON c.id = m.conversation_id"""


def _columns(preview: int | None) -> str:
    """The message columns, the texts cut to their first ``preview`` characters if given.

    A listing shows a line of each message: reading and sorting whole ones (100 MB
    put in by hand) took 800 MB for ``cortan logs``.
    """
    if preview is None:
        return _MESSAGE_COLUMNS
    cut = int(preview)
    return _MESSAGE_COLUMNS.replace("m.content", f"substr(m.content, 1, {cut})").replace(
        "m.thinking", f"substr(m.thinking, 1, {cut})"
    )


def is_id(ref: str) -> bool:
    """Whether ``ref`` names a conversation by its id (``7``, ``#7``) rather than a name."""
    return _ID_LIKE.fullmatch(ref.strip()) is not None


def check_name(name: str) -> str:
    """A conversation name as stored (trimmed), or UsageError saying what is wrong with it."""
    name = check_argument(name, "the session name").strip()
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise UsageError(f"a session name must be 1 to {MAX_NAME} printable characters")
    if _ID_LIKE.fullmatch(name):
        raise UsageError(f"a session name cannot be a number ({name!r} would read as an id)")
    return name


class SessionStore(StoreFile):
    """Conversations and messages in the SQLite file at ``path``.

    Open it with :meth:`open` (from the data folder) and close it with
    :meth:`close` or a ``with`` block. ``clock`` gives Unix seconds (tests pass
    their own).
    """

    _schedule: Callable[[float, Callable[[], None]], object] | None = None
    _group_seconds = 0.0
    on_lost: Callable[[StoreError], None] | None = None
    """Told when a grouped commit fails (its writes are lost); None raises from the timer."""
    writer: Handoff | None = None
    """Set by :class:`cortan.store.writer.Writer`: writes are handed to its thread."""

    @classmethod
    def open(
        cls, data_dir: Path, *, clock: Callable[[], float] = time.time, reading: bool = False
    ) -> Self:
        """Open the store in ``data_dir``, creating folder (0700) and file (0600) if needed.

        ``reading``: for commands that only read; a store that exists but cannot be
        written (a read-only folder, a full disk) is then opened read-only instead of
        refused.
        """
        path = get_store_path(data_dir)
        return cls(connect_for(path, reading=reading), path, clock=clock)

    # -- plumbing ----------------------------------------------------------------------

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
        return savepoint(self._conn, self.path)

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

    # -- conversations -----------------------------------------------------------------

    def create(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        system: str | None = None,
        client: str | None = None,
        request_id: str | None = None,
    ) -> Conversation:
        """A new, empty conversation. A name already taken is a UsageError.

        ``client`` and ``request_id`` name the outside program that asked and its
        end-to-end request id (gateway requests).
        """
        name = check_name(name) if name is not None else None
        now = self._clock()
        with self._write() as conn:
            _check_free(conn, name)
            cursor = conn.execute(
                "INSERT INTO conversations (name, created, updated, model, system, client,"
                " request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, now, now, model, system, client, request_id),
            )
        created = int(cursor.lastrowid or 0)
        return Conversation(created, name, now, now, model, system, 0, "", client, request_id)

    def get(self, conversation_id: int) -> Conversation | None:
        rows = self._read(_CONVERSATION + " WHERE c.id = ?", (conversation_id,))
        return _conversation(rows[0]) if rows else None

    def get_by_name(self, name: str) -> Conversation | None:
        rows = self._read(_CONVERSATION + " WHERE c.name = ?", (name.strip(),))
        return _conversation(rows[0]) if rows else None

    def find(self, ref: str) -> Conversation | None:
        """The conversation a user means by ``ref``: its name, its id (``7`` or ``#7``), or
        the request id a client of the gateway had back in ``X-Request-ID`` (the newest
        with it), which was stored and then found by nothing."""
        if _ID_LIKE.fullmatch(ref.strip()):
            return self.get(int(ref.strip().lstrip("#")))
        return self.get_by_name(ref) or self.get_by_request_id(ref)

    def get_by_request_id(self, request_id: str) -> Conversation | None:
        rows = self._read(
            _CONVERSATION + " WHERE c.request_id = ? ORDER BY c.id DESC LIMIT 1",
            (request_id.strip(),),
        )
        return _conversation(rows[0]) if rows else None

    def latest(self) -> Conversation | None:
        """The conversation last used: the one the newest message was added to.

        What ``ask -c`` and ``chat -c`` continue (issue 21). Message ids only grow
        (AUTOINCREMENT), so this holds when two conversations share a timestamp or
        the clock steps back, where ordering by time would pick the one created
        last; it is one lookup on the primary key however large the store. With no
        message stored at all, the conversation created last.
        """
        newest = self._read("SELECT conversation_id FROM messages ORDER BY id DESC LIMIT 1")
        if newest:
            return self.get(int(newest[0][0]))
        rows = self._read(_CONVERSATION + " ORDER BY c.updated DESC, c.id DESC LIMIT 1")
        return _conversation(rows[0]) if rows else None

    def list_conversations(self, limit: int | None = None) -> list[Conversation]:
        """Conversations, most recently active first."""
        sql = _CONVERSATION + " ORDER BY c.updated DESC, c.id DESC LIMIT ?"
        return [_conversation(row) for row in self._read(sql, (-1 if limit is None else limit,))]

    def list_models_used(self, limit: int, *, within: int = 5000) -> list[tuple[str, str]]:
        """(provider, model) of stored answers, the most recently used first; a failed
        one is left out (a misspelt model's answer fails, and is no name to offer).

        Only the newest ``within`` messages are looked at: a Tab completes from this
        (cortan/cli/names.py), and it must not scan a store of years.
        """
        sql = (
            "SELECT provider, model FROM (SELECT id, provider, model, status FROM messages"
            " ORDER BY id DESC LIMIT ?) WHERE provider IS NOT NULL AND model IS NOT NULL"
            " AND status IS NOT 'failed'"
            " GROUP BY provider, model ORDER BY max(id) DESC LIMIT ?"
        )
        return [(str(p), str(m)) for p, m in self._read(sql, (within, limit))]

    def count_conversations(self) -> int:
        """How many conversations are stored (for "the newest 20 of 63")."""
        return int(self._read("SELECT count(*) FROM conversations")[0][0])

    def rename(self, conversation_id: int, name: str | None) -> None:
        """Give a conversation a (new) name, or none; a name already taken is a UsageError."""
        name = check_name(name) if name is not None else None
        with self._write() as conn:
            _check_free(conn, name, conversation_id)
            conn.execute("UPDATE conversations SET name = ? WHERE id = ?", (name, conversation_id))

    def update(self, conversation_id: int, *, model: str | None, system: str | None) -> None:
        """Set the model and system prompt a conversation continues with."""
        with self._write() as conn:
            conn.execute(
                "UPDATE conversations SET model = ?, system = ? WHERE id = ?",
                (model, system, conversation_id),
            )

    def delete(self, conversation_id: int) -> bool:
        """Delete a conversation and all its messages; False when there was none."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            _drop_orphan_blobs(conn)
        return cursor.rowcount > 0

    def fork(self, conversation_id: int, name: str | None = None) -> Forked:
        """A new conversation holding a copy of this one's messages so far (``/fork``).

        Model, system prompt, every message with its metadata, thinking and images
        (shared, as each image is stored once) are copied in one transaction; the
        original is left as it was. ``mapping`` takes each original message id to
        its copy. A missing conversation is a UsageError; a taken name too.
        """
        name = check_name(name) if name is not None else None
        now = self._clock()
        with self._write() as conn:
            _check_free(conn, name)
            row = conn.execute(
                "SELECT model, system FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                raise UsageError(f"no stored conversation #{conversation_id} to fork")
            cursor = conn.execute(
                "INSERT INTO conversations (name, created, updated, model, system)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, now, now, row[0], row[1]),
            )
            forked = int(cursor.lastrowid or 0)
            mapping: dict[int, int] = {}
            originals = conn.execute(
                "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
            ).fetchall()
            for (original,) in originals:
                copied = conn.execute(
                    "INSERT INTO messages (conversation_id, role, content, created, status, model,"
                    " provider, prompt_tokens, completion_tokens, duration, thinking)"
                    " SELECT ?, role, content, created, status, model, provider, prompt_tokens,"
                    " completion_tokens, duration, thinking FROM messages WHERE id = ?",
                    (forked, original),
                )
                mapping[original] = int(copied.lastrowid or 0)
                conn.execute(
                    "INSERT INTO message_images (message_id, position, digest)"
                    " SELECT ?, position, digest FROM message_images WHERE message_id = ?",
                    (mapping[original], original),
                )
        found = self.get(forked)
        assert found is not None  # just committed
        return Forked(found, mapping)

    # -- messages ----------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        content: str,
        *,
        status: Status = "complete",
        model: str | None = None,
        provider: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        duration: float | None = None,
        thinking: str = "",
        images: Sequence[Image] = (),
    ) -> int:
        """Append a message and commit it; returns its id.

        The conversation's ``updated`` time moves to now; an assistant message that
        names its provider and model also becomes the conversation's model, so that
        continuing it asks the model that last answered.
        """
        now = self._clock()
        answered_by = f"{provider}:{model}" if role == "assistant" and provider and model else None
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, created, status, model,"
                " provider, prompt_tokens, completion_tokens, duration, thinking)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, now, status, model, provider,
                 prompt_tokens, completion_tokens, duration, thinking),
            )  # fmt: skip
            message_id = int(cursor.lastrowid or 0)
            for position, image in enumerate(images):
                conn.execute(
                    "INSERT OR IGNORE INTO blobs (digest, mime, data) VALUES (?, ?, ?)",
                    (image.digest, image.mime, image.data),
                )
                conn.execute(
                    "INSERT INTO message_images (message_id, position, digest) VALUES (?, ?, ?)",
                    (message_id, position, image.digest),
                )
            conn.execute(
                "UPDATE conversations SET updated = ?, model = coalesce(?, model) WHERE id = ?",
                (now, answered_by, conversation_id),
            )
        return message_id

    def add_tool_calls(self, message_id: int, results: Sequence[ToolResult]) -> None:
        """Keep the tool calls of the answer ``message_id``, in the order they were made."""
        if not results:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO tool_calls (message_id, position, call_id, name, arguments,"
                " status, decided_by, output, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (message_id, position, r.call.id, r.call.name, r.call.arguments,
                     r.status, r.decided_by, r.output, r.duration)
                    for position, r in enumerate(results)
                ],
            )  # fmt: skip

    def tool_calls(self, message_ids: Sequence[int]) -> dict[int, list[StoredToolCall]]:
        """The tool calls of these answers, by message id, in order."""
        found: dict[int, list[StoredToolCall]] = {}
        for start in range(0, len(message_ids), 500):
            chunk = list(message_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            rows = self._read(
                "SELECT message_id, name, arguments, status, decided_by, output, duration"
                f" FROM tool_calls WHERE message_id IN ({marks}) ORDER BY message_id, position",
                tuple(chunk),
            )
            for row in rows:
                found.setdefault(row[0], []).append(_tool_call(row))
        return found

    def delete_messages(self, conversation_id: int, message_ids: Sequence[int]) -> int:
        """Delete these messages of one conversation (what ``/retry`` replaced); the count gone.

        Ids of another conversation are left alone: a caller holding stale ids cannot
        reach into a conversation it does not name.
        """
        if not message_ids:
            return 0
        marks = ", ".join("?" * len(message_ids))
        with self._write() as conn:
            cursor = conn.execute(
                f"DELETE FROM messages WHERE conversation_id = ? AND id IN ({marks})",
                (conversation_id, *message_ids),
            )
        return cursor.rowcount

    def remove_messages(self, message_ids: Sequence[int]) -> list[int]:
        """Delete these messages, in whatever conversations (``cortan logs rm``).

        Returns the ids that existed and are gone; an id that names no message is
        left out, so the caller can say which were not found. A conversation left
        with no message is deleted with them, as it would only list as empty.
        """
        if not message_ids:
            return []
        marks = ", ".join("?" * len(message_ids))
        with self._write() as conn:
            found = conn.execute(
                f"SELECT id, conversation_id FROM messages WHERE id IN ({marks}) ORDER BY id",
                tuple(message_ids),
            ).fetchall()
            conn.execute(f"DELETE FROM messages WHERE id IN ({marks})", tuple(message_ids))
            touched = sorted({row[1] for row in found})
            for conversation_id in touched:
                conn.execute(
                    "DELETE FROM conversations WHERE id = ? AND NOT EXISTS"
                    " (SELECT 1 FROM messages WHERE conversation_id = ?)",
                    (conversation_id, conversation_id),
                )
            _drop_orphan_blobs(conn)
        return [int(row[0]) for row in found]

    def delete_all(self) -> int:
        """Delete every conversation and message (``cortan logs rm --all``); how many
        conversations went. Batch jobs and the response cache are not touched."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM conversations")  # messages cascade
            _drop_orphan_blobs(conn)
        return cursor.rowcount

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """A conversation's messages, oldest first."""
        sql = f"SELECT {_MESSAGE_COLUMNS} FROM messages m WHERE m.conversation_id = ? ORDER BY m.id"
        found = [_message(row) for row in self._read(sql, (conversation_id,))]
        images = self._images(conversation_id)
        for message in found:
            message.images = images.get(message.id, ())
        return self._with_tools(found)

    def _with_tools(self, found: list[StoredMessage]) -> list[StoredMessage]:
        """``found`` with each answer's tool calls filled in."""
        answers = [m.id for m in found if m.role == "assistant"]
        calls = self.tool_calls(answers) if answers else {}
        for message in found:
            message.tool_calls = tuple(calls.get(message.id, ()))
        return found

    def _images(self, conversation_id: int) -> dict[int, tuple[Image, ...]]:
        """The images of a conversation's messages, by message id, in their order."""
        rows = self._read(
            "SELECT i.message_id, b.mime, CAST(b.data AS BLOB) FROM message_images i"
            " JOIN blobs b ON b.digest = i.digest JOIN messages m ON m.id = i.message_id"
            " WHERE m.conversation_id = ? ORDER BY i.message_id, i.position",
            (conversation_id,),
        )
        images: dict[int, list[Image]] = {}
        for message_id, mime, data in rows:
            images.setdefault(message_id, []).append(Image(as_text(mime), bytes(data or b"")))
        return {key: tuple(value) for key, value in images.items()}

    def recent_messages(self, limit: int = 20) -> list[StoredMessage]:
        """The newest messages across all conversations, newest first."""
        rows = self._read(_LOG + " ORDER BY m.id DESC LIMIT ?", (limit,))
        return self._with_tools([_message(row) for row in rows])

    def recent_exchanges(
        self, limit: int = 20, *, preview: int | None = None
    ) -> list[StoredMessage]:
        """The newest ``limit`` questions with their answers, across conversations, newest first.

        ``cortan logs -n 2`` means two exchanges, as ``llm logs -n 2`` does, not two
        messages (issue 21). An answer is the message that follows its question in
        the same conversation, when it is the assistant's. ``preview``: texts cut to
        that many characters (:func:`_columns`).
        """
        sql = f"""
            WITH asked AS (
                SELECT id, conversation_id FROM messages WHERE role = 'user'
                ORDER BY id DESC LIMIT ?
            ), answered AS (
                SELECT (SELECT a.id FROM messages a
                        WHERE a.conversation_id = asked.conversation_id AND a.id > asked.id
                        ORDER BY a.id LIMIT 1) AS id
                FROM asked
            )
            SELECT {_columns(preview)}, c.name
            FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.id IN (SELECT id FROM asked)
               OR (m.role = 'assistant' AND m.id IN (SELECT id FROM answered))
            ORDER BY m.id DESC
        """
        return self._with_tools([_message(row) for row in self._read(sql, (limit,))])

    def search(
        self, text: str, limit: int = 20, *, preview: int | None = None
    ) -> list[StoredMessage]:
        """Messages containing every word of ``text`` (any text is safe), newest first;
        ``preview`` as :meth:`recent_exchanges` takes it."""
        from cortan.store.search import make_match_query  # only search needs it

        query = make_match_query(text)
        if query is None:
            return []
        sql = (
            f"SELECT {_columns(preview)}, c.name FROM messages_fts f"
            " JOIN messages m ON m.id = f.rowid JOIN conversations c ON c.id = m.conversation_id"
            " WHERE messages_fts MATCH ? ORDER BY f.rowid DESC LIMIT ?"
        )
        return self._with_tools([_message(row) for row in self._read(sql, (query, limit))])

    def stats(self) -> StoreInfo:
        """Path, schema version, size and counts of this store."""
        return describe_store(self.path)


def _check_free(conn: sqlite3.Connection, name: str | None, owner: int | None = None) -> None:
    """Refuse a name another conversation holds (called under the write lock: no race)."""
    if name is None:
        return
    row = conn.execute("SELECT id FROM conversations WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != owner:
        raise UsageError(f"a session named {name!r} already exists: choose another name")


def _drop_orphan_blobs(conn: sqlite3.Connection) -> None:
    """Images no message shows any more go (each is stored once for all messages)."""
    conn.execute("DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM message_images)")


class Forked(NamedTuple):
    """A conversation made by :meth:`SessionStore.fork`, and its messages' ids by original."""

    conversation: Conversation
    mapping: dict[int, int]


def _conversation(row: tuple[Any, ...]) -> Conversation:
    cid, name, created, updated, model, system, count, title, client, request_id = row
    return Conversation(
        cid, as_optional_text(name), as_time(created), as_time(updated),
        as_optional_text(model), as_optional_text(system), count, as_text(title),
        as_optional_text(client), as_optional_text(request_id),
    )  # fmt: skip


def _message(row: tuple[Any, ...]) -> StoredMessage:
    mid, cid, role, content, created, status, model, provider, asked, answered, took = row[:11]
    return StoredMessage(
        mid, cid, as_text(role), as_text(content), as_time(created), as_text(status),  # type: ignore[arg-type]
        as_optional_text(model), as_optional_text(provider), as_count(asked), as_count(answered),
        as_seconds(took), as_text(row[11]), as_optional_text(row[12]) if len(row) > 12 else None,
    )  # fmt: skip


def _tool_call(row: tuple[Any, ...]) -> StoredToolCall:
    message_id, name, arguments, status, decided_by, output, duration = row
    return StoredToolCall(
        message_id, as_text(name), as_text(arguments), as_text(status),
        as_optional_text(decided_by), as_text(output), as_seconds(duration),
    )  # fmt: skip
