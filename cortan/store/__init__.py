"""The session store: conversations, messages and usage in one SQLite file.

Layer: store (stdlib ``sqlite3`` only; never imports engine internals, render or
shell). ``SessionStore`` is the API the REPL and the CLI use;
``recorder.Recorder`` is the bus subscriber that writes each exchange as it
happens; ``describe_store`` looks at a store without changing it (``cortan
doctor``). The data folder is always passed in: the store does not read config.

    db.py        open, check, configure (WAL, busy timeout), migrate; errors
    schema.py    the forward migrations, one per schema version
    commits.py   how writes are committed: a transaction each, or grouped (the gateway)
    messages.py  MessageStore: messages, their images and tool calls; log and search
    sessions.py  SessionStore: opening the store, conversations (on MessageStore)
    search.py    user text -> a safe FTS5 query
    records.py   the named tuples handed out
    recorder.py  Recorder (subscribed by cortan.app.App.attach_store)
    jobs.py      JobStore: ``cortan batch`` jobs and how each item ended
    cache.py     CacheStore: the response cache's answers, capped in size and age
    windows.py   WindowStore: context windows servers named in a refusal (issue 21)
"""

from cortan.store.db import describe_store, get_store_path
from cortan.store.records import Conversation, StoredMessage, StoreInfo
from cortan.store.sessions import SessionStore

__all__ = [
    "Conversation",
    "SessionStore",
    "StoreInfo",
    "StoredMessage",
    "describe_store",
    "get_store_path",
]
