"""The messages of the session store: each question and answer, its images and tool calls.

Layer: store (stdlib ``sqlite3`` only). :class:`MessageStore` is the half of
:class:`cortan.store.sessions.SessionStore` that adds, reads, searches and deletes
messages; the conversations they belong to are in ``sessions.py``, and how each
write is committed in ``commits.py``. An image is stored once (by its SHA-256)
however many messages show it; :func:`drop_orphan_blobs` lets the last one go.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cortan.core.images import Image
from cortan.store.commits import CommittingStore
from cortan.store.records import (
    Role,
    Status,
    StoredMessage,
    StoredToolCall,
    as_count,
    as_optional_text,
    as_seconds,
    as_text,
    as_time,
)

if TYPE_CHECKING:
    import sqlite3

    from cortan.core.events import ToolResult

_MESSAGE_COLUMNS = """m.id, m.conversation_id, m.role, m.content, m.created, m.status,
    m.model, m.provider, m.prompt_tokens, m.completion_tokens, m.duration, m.thinking,
    m.request_id"""
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


class MessageStore(CommittingStore):
    """Messages: appended to a conversation, read back, searched and deleted."""

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
        request_id: str | None = None,
        thread: bytes | None = None,
    ) -> int:
        """Append a message and commit it; returns its id.

        The conversation's ``updated`` time moves to now; an assistant message that
        names its provider and model also becomes the conversation's model, so that
        continuing it asks the model that last answered. Its thread key becomes
        ``thread``: the gateway's answer sets what its client sends next, and any other
        message clears it, so a client that sends the conversation as it was cannot
        append to it once it has moved on (cortan/store/threads.py). ``request_id``: the
        gateway request's end-to-end id, by which ``sessions show`` finds it.
        """
        now = self._clock()
        answered_by = f"{provider}:{model}" if role == "assistant" and provider and model else None
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, created, status, model,"
                " provider, prompt_tokens, completion_tokens, duration, thinking, request_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, now, status, model, provider,
                 prompt_tokens, completion_tokens, duration, thinking, request_id),
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
                "UPDATE conversations SET updated = ?, model = coalesce(?, model), thread = ?"
                " WHERE id = ?",
                (now, answered_by, thread, conversation_id),
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

    def newest_message_id(self, conversation_id: int) -> int | None:
        """The id of a conversation's last message (ids only grow), None when it has none."""
        rows = self._read(
            "SELECT max(id) FROM messages WHERE conversation_id = ?", (conversation_id,)
        )
        return None if rows[0][0] is None else int(rows[0][0])

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
            drop_orphan_blobs(conn)
        return [int(row[0]) for row in found]

    def delete_all(self) -> int:
        """Delete every conversation and message (``cortan logs rm --all``); how many
        conversations went. Batch jobs and the response cache are not touched."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM conversations")  # messages cascade
            drop_orphan_blobs(conn)
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


def drop_orphan_blobs(conn: sqlite3.Connection) -> None:
    """Images no message shows any more go (each is stored once for all messages)."""
    conn.execute("DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM message_images)")


def _message(row: tuple[Any, ...]) -> StoredMessage:
    mid, cid, role, content, created, status, model, provider, asked, answered, took = row[:11]
    return StoredMessage(
        mid, cid, as_text(role), as_text(content), as_time(created), as_text(status),  # type: ignore[arg-type]
        as_optional_text(model), as_optional_text(provider), as_count(asked), as_count(answered),
        as_seconds(took), as_text(row[11]), as_optional_text(row[13]) if len(row) > 13 else None,
        request_id=as_optional_text(row[12]),
    )  # fmt: skip


def _tool_call(row: tuple[Any, ...]) -> StoredToolCall:
    message_id, name, arguments, status, decided_by, output, duration = row
    return StoredToolCall(
        message_id, as_text(name), as_text(arguments), as_text(status),
        as_optional_text(decided_by), as_text(output), as_seconds(duration),
    )  # fmt: skip
