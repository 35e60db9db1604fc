"""The session store's schema, as the list of forward migrations that builds it.

Layer: store (plain SQL). ``MIGRATIONS[n]`` takes a database at schema version
``n`` to ``n + 1``; the version lives in ``PRAGMA user_version``, so a fresh file
(version 0) runs every step and an older store runs only what it lacks. Steps are
never edited once released: a change is a new step appended at the end, and a
test builds a database at each older version and migrates it.

Each step is a tuple of single statements (not a script) so that the whole
migration runs inside one ``BEGIN IMMEDIATE`` transaction: ``executescript``
would commit half-way. Times are Unix seconds (REAL); ``datetime(created,
'unixepoch')`` shows them in the ``sqlite3`` shell. Ids are AUTOINCREMENT: an id
is never reused after a delete, so a shell still holding conversation 7 cannot
write into a new conversation that happens to get number 7.

    version 1  conversations and messages
    version 2  full-text search over message content (FTS5), kept in step by triggers
    version 3  a model's reasoning beside its answer; images kept once by their SHA-256
    version 4  the client that asked and its request id, on conversations (the gateway)
    version 5  batch jobs and the state of their items; the response cache
    version 6  the approval gate's decisions and standing grants
    version 7  the tool calls of an answer: arguments, decision, result (issue 18)
    version 8  context windows servers named when refusing a prompt (issue 21)
    version 9  a conversation's title: the first prompt as typed
    version 10 a gateway conversation's thread key; each message's request id (issue 20)
"""

from __future__ import annotations

APPLICATION_ID = 0x636F7274
"""``PRAGMA application_id`` of a cortan store ("cort"): how cortan knows its own files."""

_V1 = (
    """
    CREATE TABLE conversations (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        name    TEXT UNIQUE,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        model   TEXT,
        system  TEXT
    )
    """,
    """
    CREATE TABLE messages (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id   INTEGER NOT NULL
                          REFERENCES conversations(id) ON DELETE CASCADE,
        role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content           TEXT NOT NULL,
        model             TEXT,
        provider          TEXT,
        created           REAL NOT NULL,
        status            TEXT NOT NULL DEFAULT 'complete'
                          CHECK (status IN ('complete', 'interrupted', 'failed')),
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        duration          REAL
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
    "CREATE INDEX conversations_by_updated ON conversations (updated, id)",
)

# An external-content FTS5 index: the text is stored once (in messages) and the
# triggers keep the index in step, including deletes cascaded from conversations.
_V2 = (
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content,
        content = 'messages',
        content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
)

_V3 = (
    "ALTER TABLE messages ADD COLUMN thinking TEXT NOT NULL DEFAULT ''",
    """
    CREATE TABLE blobs (
        digest TEXT PRIMARY KEY,
        mime   TEXT NOT NULL,
        data   BLOB NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE message_images (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        digest     TEXT NOT NULL REFERENCES blobs(digest),
        PRIMARY KEY (message_id, position)
    ) WITHOUT ROWID
    """,
)

# Gateway requests (issue 20) name the outside program that sent them and carry an
# end-to-end request id (X-Request-ID); each is a conversation of its own.
_V4 = (
    "ALTER TABLE conversations ADD COLUMN client TEXT",
    "ALTER TABLE conversations ADD COLUMN request_id TEXT",
)

# Batch jobs (cortan/store/jobs.py): one row per job, one per item that ended (answered
# or failed), keyed by its place in the input. An item in flight or not yet run has no
# row, so a job killed at any moment resumes from what committed. ``fingerprint`` is a
# hash of the item's whole request: an input that changed under a job re-runs that item.
# ``owner`` is the process running the job (its pid) and ``beat`` when it last said it
# still does, so a second one is refused (and a pid reused by another program is not).
# ``output`` is the line written for the item, so a resumed job writes every item again
# without asking any. The response cache (cortan/store/cache.py) keeps finished answers
# by a hash of everything that shaped them; ``response_cache_size`` holds its totals,
# kept by triggers, so that keeping it under its size cap never counts the table.
_V5 = (
    """
    CREATE TABLE batch_jobs (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        key      TEXT NOT NULL UNIQUE,
        name     TEXT,
        source   TEXT NOT NULL,
        created  REAL NOT NULL,
        updated  REAL NOT NULL,
        owner    INTEGER,
        beat     REAL
    )
    """,
    """
    CREATE TABLE batch_items (
        job_id       INTEGER NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
        position     INTEGER NOT NULL,
        fingerprint  BLOB NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('done', 'failed')),
        output       TEXT NOT NULL,
        updated      REAL NOT NULL,
        PRIMARY KEY (job_id, position)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE response_cache (
        key                BLOB PRIMARY KEY,
        provider           TEXT NOT NULL,
        model              TEXT NOT NULL,
        content            TEXT NOT NULL,
        finish_reason      TEXT NOT NULL,
        prompt_tokens      INTEGER,
        completion_tokens  INTEGER,
        size               INTEGER NOT NULL,
        created            REAL NOT NULL,
        used               REAL NOT NULL,
        hits               INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX response_cache_by_used ON response_cache (used)",
    "CREATE INDEX response_cache_by_created ON response_cache (created)",
    """
    CREATE TABLE response_cache_size (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        entries  INTEGER NOT NULL,
        bytes    INTEGER NOT NULL
    )
    """,
    "INSERT INTO response_cache_size (id, entries, bytes) VALUES (1, 0, 0)",
    """
    CREATE TRIGGER response_cache_added AFTER INSERT ON response_cache BEGIN
        UPDATE response_cache_size SET entries = entries + 1, bytes = bytes + new.size;
    END
    """,
    """
    CREATE TRIGGER response_cache_removed AFTER DELETE ON response_cache BEGIN
        UPDATE response_cache_size SET entries = entries - 1, bytes = bytes - old.size;
    END
    """,
    """
    CREATE TRIGGER response_cache_resized AFTER UPDATE OF size ON response_cache BEGIN
        UPDATE response_cache_size SET bytes = bytes - old.size + new.size;
    END
    """,
)

# The approval gate (cortan/store/approvals.py): every decision about a command or a
# tool call, with the exit status of a command that ran, and the standing yeses the
# user gave "always". A session's yeses live in the process that asked, not here.
_V6 = (
    """
    CREATE TABLE grants (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        kind     TEXT NOT NULL CHECK (kind IN ('command', 'tool')),
        name     TEXT NOT NULL,
        pattern  TEXT NOT NULL,
        created  REAL NOT NULL,
        UNIQUE (kind, name, pattern)
    )
    """,
    """
    CREATE TABLE decisions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        at            REAL NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('command', 'tool')),
        name          TEXT NOT NULL,
        text          TEXT NOT NULL,
        allowed       INTEGER NOT NULL CHECK (allowed IN (0, 1)),
        decided_by    TEXT NOT NULL,
        scope         TEXT,
        reason        TEXT NOT NULL,
        conversation  TEXT,
        status        INTEGER
    )
    """,
    "CREATE INDEX decisions_by_at ON decisions (at, id)",
)

# The tool calls a model made while answering (docs/tools.md), stored with the answer
# they belong to: what was asked, how the gate decided, and what went back (bounded).
_V7 = (
    """
    CREATE TABLE tool_calls (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id  INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        call_id     TEXT NOT NULL,
        name        TEXT NOT NULL,
        arguments   TEXT NOT NULL,
        status      TEXT NOT NULL,
        decided_by  TEXT,
        output      TEXT NOT NULL,
        duration    REAL
    )
    """,
    "CREATE INDEX tool_calls_by_message ON tool_calls (message_id, position)",
)

# What a server taught about one model's window when it refused a prompt as too long
# (cortan/store/windows.py), so the next process fits the conversation at once. ``model``
# is the engine's key: the route and the server's base URLs. Either number may be
# missing: a server that names no window still says the estimate was too low.
_V8 = (
    """
    CREATE TABLE model_windows (
        model    TEXT PRIMARY KEY,
        window   INTEGER,
        factor   REAL,
        learned  REAL NOT NULL
    ) WITHOUT ROWID
    """,
)

# What listings show of a conversation: the first prompt as the user typed it, with what
# came with it named ("summarise [stdin]"), not the first message as sent, whose start
# is the framed stdin or file ("Input from stdin: ```…"). NULL for conversations stored
# before it, and for requests with no typed prompt: listings fall back to the message.
_V9 = ("ALTER TABLE conversations ADD COLUMN title TEXT",)

# A client of the gateway sends its whole history with every request; ``thread`` is the
# digest of what a client would send to go on with a conversation (cortan/store/threads.py),
# NULL once anything else is added to it or any of its messages is deleted (``logs rm``,
# ``/retry``: the client's history would no longer be the conversation). Each message of
# a gateway request carries that request's id, so ``sessions show ID`` finds the
# conversation a later request joined.
_V10 = (
    "ALTER TABLE conversations ADD COLUMN thread BLOB",
    "CREATE INDEX conversations_by_thread ON conversations (thread) WHERE thread IS NOT NULL",
    "ALTER TABLE messages ADD COLUMN request_id TEXT",
    "CREATE INDEX messages_by_request_id ON messages (request_id) WHERE request_id IS NOT NULL",
    """
    CREATE TRIGGER messages_thread_delete AFTER DELETE ON messages BEGIN
        UPDATE conversations SET thread = NULL
        WHERE id = old.conversation_id AND thread IS NOT NULL;
    END
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10,
)  # fmt: skip
LATEST_VERSION = len(MIGRATIONS)
TABLES = ("conversations", "messages")
