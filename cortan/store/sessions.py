"""The session store: conversations and their messages in one SQLite file.

Layer: store (stdlib ``sqlite3`` only). The REPL, ``cortan ask`` and the
``sessions`` and ``logs`` commands all go through :class:`SessionStore`; the
model layer never calls it (answers reach it through
:class:`cortan.store.recorder.Recorder`, a bus subscriber).

``SessionStore`` is built in three layers, a module each: how writes are
committed (``commits.py``: a transaction each, or grouped for the gateway), the
messages (``messages.py``), and here the conversations that hold them, with
opening the store.

Names: a conversation may have a unique name (``cortan ask --session work``);
names cannot look like an id (``12``, ``#12``), so ``find`` never has to guess.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from cortan.core.errors import UsageError
from cortan.core.text import check_argument
from cortan.store.db import connect_for, describe_store, get_store_path
from cortan.store.messages import MessageStore, drop_orphan_blobs
from cortan.store.records import (
    Conversation,
    StoreInfo,
    as_optional_text,
    as_text,
    as_time,
)

if TYPE_CHECKING:
    from cortan.store.retention import Pruned, Reclaimed

MAX_NAME = 100
_ID_LIKE = re.compile(r"#?\d+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TITLE_CHARS = 200

_CONVERSATION = f"""
    SELECT c.id, c.name, c.created, c.updated, c.model, c.system,
        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id),
        coalesce(c.title, (SELECT substr(m.content, 1, {TITLE_CHARS}) FROM messages m
                  WHERE m.conversation_id = c.id AND m.role = 'user' ORDER BY m.id LIMIT 1), ''),
        c.client, c.request_id
    FROM conversations c
"""


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


class SessionStore(MessageStore):
    """Conversations and messages in the SQLite file at ``path``.

    Open it with :meth:`open` (from the data folder) and close it with
    :meth:`close` or a ``with`` block. ``clock`` gives Unix seconds (tests pass
    their own).
    """

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

    # -- conversations -----------------------------------------------------------------

    def create(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        system: str | None = None,
        client: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
    ) -> Conversation:
        """A new, empty conversation. A name already taken is a UsageError.

        ``client`` and ``request_id`` name the outside program that asked and its
        end-to-end request id (gateway requests); ``title`` is :meth:`entitle`'s, given
        at once by a caller that knows it (an UPDATE fewer for each gateway request).
        """
        name = check_name(name) if name is not None else None
        now = self._clock()
        title = title[:TITLE_CHARS] if title else None
        with self._write() as conn:
            _check_free(conn, name)
            cursor = conn.execute(
                "INSERT INTO conversations (name, created, updated, model, system, client,"
                " request_id, title) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, now, now, model, system, client, request_id, title),
            )
        created = int(cursor.lastrowid or 0)
        return Conversation(
            created, name, now, now, model, system, 0, title or "", client, request_id
        )

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
        """The conversation a gateway request's messages are in: the newest, when a client
        sent one id twice. A store before version 10 kept the id on conversations only."""
        found = self._read(
            "SELECT conversation_id FROM messages WHERE request_id = ? ORDER BY id DESC LIMIT 1",
            (request_id.strip(),),
        )
        if found:
            return self.get(int(found[0][0]))
        rows = self._read(
            _CONVERSATION + " WHERE c.request_id = ? ORDER BY c.id DESC LIMIT 1",
            (request_id.strip(),),
        )
        return _conversation(rows[0]) if rows else None

    def holding_request_id(self, ref: str) -> list[int]:
        """The conversations with a message of this gateway request id, newest first (a
        client may send one ``X-Request-ID`` twice); [] for a name or an id."""
        if _ID_LIKE.fullmatch(ref.strip()) or self.get_by_name(ref) is not None:
            return []
        rows = self._read(
            "SELECT conversation_id FROM messages WHERE request_id = ?"
            " GROUP BY conversation_id ORDER BY max(id) DESC",
            (ref.strip(),),
        )
        return [int(row[0]) for row in rows]

    def take_thread(self, key: bytes, system: str | None) -> int | None:
        """The conversation whose thread key is ``key``, claimed: its key is cleared, so a
        second request carrying the same history starts a conversation of its own
        rather than interleave with this one (cortan/store/threads.py), and its system
        prompt becomes ``system`` (the request's, which some clients change each time).
        The newest when two have it (two clients that had the same exchange, word for
        word)."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT id FROM conversations WHERE thread = ? ORDER BY updated DESC, id DESC"
                " LIMIT 1",
                (key,),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE conversations SET thread = NULL, system = ? WHERE id = ?",
                    (system, row[0]),
                )
        return None if row is None else int(row[0])

    def latest(self) -> Conversation | None:
        """The conversation last used: the one the newest message was added to.

        What ``ask -c`` and ``chat -c`` continue (issue 21). Message ids only grow
        (AUTOINCREMENT), so this holds when two conversations share a timestamp or
        the clock steps back, where ordering by time would pick the one created
        last; it is one lookup on the primary key however large the store. With no
        message stored at all, the conversation created last.

        A conversation that never had an answer is passed over: a question to a misspelt
        or missing model is stored, failed, and ``-c`` went on with it, failing the same
        way, rather than with the conversation the person was having. When every one is
        like that, the newest is still the one.
        """
        newest = self._read(
            "SELECT m.conversation_id FROM messages m WHERE EXISTS (SELECT 1 FROM messages a"
            " WHERE a.conversation_id = m.conversation_id AND a.role = 'assistant'"
            " AND a.status IS NOT 'failed') ORDER BY m.id DESC LIMIT 1"
        ) or self._read("SELECT conversation_id FROM messages ORDER BY id DESC LIMIT 1")
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
            drop_orphan_blobs(conn)
        return cursor.rowcount > 0

    def prune(self, before: float, *, dry_run: bool = False) -> Pruned:
        """Remove the conversations last active before ``before`` (Unix seconds) with all
        that hangs off them, or only count them (``dry_run``): ``logs rm --older-than``."""
        from cortan.store import retention  # only pruning needs it

        if dry_run:
            return retention.count_older(self._conn, self.path, before)
        return retention.delete_older(self._conn, self.path, before)

    def reclaim_space(self) -> Reclaimed:
        """Give the pages deletes freed back to the disk, when they are worth it."""
        from cortan.store import retention

        return retention.reclaim(self._conn, self.path)

    def entitle(self, conversation_id: int, title: str) -> None:
        """Give a conversation with no question yet the title listings show for it: the
        first prompt as typed (the message stored is as sent, framed input first)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE conversations SET title = ? WHERE id = ? AND title IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM messages WHERE conversation_id = ? AND role = 'user')",
                (title[:TITLE_CHARS], conversation_id, conversation_id),
            )

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
                "SELECT model, system, title FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                raise UsageError(f"no stored conversation #{conversation_id} to fork")
            cursor = conn.execute(
                "INSERT INTO conversations (name, created, updated, model, system, title)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, now, now, row[0], row[1], row[2]),
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
