"""Opening the store: private files, WAL, refusing foreign files, migrating old schemas."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from cortan.core.errors import StoreError
from cortan.store import SessionStore, describe_store, get_store_path
from cortan.store.db import connect
from cortan.store.schema import APPLICATION_ID, LATEST_VERSION, MIGRATIONS


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_store_is_private_and_in_wal_mode(data_dir: Path) -> None:
    with SessionStore.open(data_dir) as store:
        store.add_message(store.create().id, "user", "hello")
        siblings = sorted(p.name for p in data_dir.iterdir())
        assert siblings == ["cortan.db", "cortan.db-shm", "cortan.db-wal"]
        assert {mode(p) for p in data_dir.iterdir()} == {0o600}
    assert mode(data_dir) == 0o700
    info = describe_store(data_dir)
    assert (info.journal_mode, info.schema_version, info.messages) == ("wal", LATEST_VERSION, 1)


def test_file_is_private_whatever_the_umask(data_dir: Path) -> None:
    import os

    old = os.umask(0)
    try:
        SessionStore.open(data_dir).close()
    finally:
        os.umask(old)
    assert mode(get_store_path(data_dir)) == 0o600
    assert mode(data_dir) == 0o700


def test_connection_settings(data_dir: Path) -> None:
    conn = connect(get_store_path(data_dir))
    try:
        pragmas = {
            name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("foreign_keys", "busy_timeout", "journal_mode", "application_id")
        }
    finally:
        conn.close()
    assert pragmas == {
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "journal_mode": "wal",
        "application_id": APPLICATION_ID,
    }


def test_empty_file_becomes_a_store(data_dir: Path) -> None:
    data_dir.mkdir()
    get_store_path(data_dir).touch()
    with SessionStore.open(data_dir) as store:
        assert store.list_conversations() == []


@pytest.mark.parametrize(
    "content",
    [
        b"this is my shopping list, not a database\n" * 100,
        b"SQLite format 3\x00" + b"\xff" * 4000,  # right magic, garbage after it
    ],
    ids=["text", "bad-header"],
)
def test_garbage_file_is_refused_and_untouched(data_dir: Path, content: bytes) -> None:
    data_dir.mkdir()
    path = get_store_path(data_dir)
    path.write_bytes(content)
    with pytest.raises(StoreError) as raised:
        SessionStore.open(data_dir)
    assert str(path) in str(raised.value)
    assert "not a cortan session store" in str(raised.value)
    assert path.read_bytes() == content
    with pytest.raises(StoreError):
        describe_store(path)


def make_foreign_database(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('pancakes')")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_someone_elses_sqlite_database_is_refused_and_untouched(data_dir: Path) -> None:
    path = get_store_path(data_dir)
    before = make_foreign_database(path)
    with pytest.raises(StoreError, match="an SQLite database but not a cortan session store"):
        SessionStore.open(data_dir)
    assert path.read_bytes() == before
    assert not path.with_name("cortan.db-wal").exists()


def test_store_from_a_newer_cortan_is_refused(data_dir: Path) -> None:
    SessionStore.open(data_dir).close()
    path = get_store_path(data_dir)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer cortan"):
        SessionStore.open(data_dir)
    assert path.read_bytes() == before


def test_damaged_store_is_one_sentence(data_dir: Path) -> None:
    with SessionStore.open(data_dir) as store:
        for i in range(200):
            store.add_message(store.create().id, "user", f"message {i} " * 50)
    path = get_store_path(data_dir)
    data = bytearray(path.read_bytes())
    data[4096 * 3 :] = b"\x07" * (len(data) - 4096 * 3)  # every page after the third
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as raised, SessionStore.open(data_dir) as store:
        store.list_conversations()
    assert str(path) in str(raised.value)


def build_at_version(path: Path, version: int) -> sqlite3.Connection:
    """A store exactly as a cortan at schema ``version`` left it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for steps in MIGRATIONS[:version]:
        for statement in steps:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    return conn


def test_version_1_store_is_migrated_and_keeps_its_data(data_dir: Path) -> None:
    path = get_store_path(data_dir)
    conn = build_at_version(path, 1)
    conn.execute(
        "INSERT INTO conversations (id, name, created, updated, model, system)"
        " VALUES (1, 'old', 10, 20, 'ollama:llama3.2', 'be brief')"
    )
    conn.executemany(
        "INSERT INTO messages (conversation_id, role, content, created, status)"
        " VALUES (1, ?, ?, ?, ?)",
        [("user", "where are the penguins", 11, "complete"),
         ("assistant", "antarctic penguins live south", 12, "interrupted")],
    )  # fmt: skip
    conn.close()

    with SessionStore.open(data_dir) as store:
        conversation = store.get_by_name("old")
        assert conversation is not None
        assert (conversation.model, conversation.system) == ("ollama:llama3.2", "be brief")
        assert [m.status for m in store.messages(conversation.id)] == ["complete", "interrupted"]
        # the new full-text index covers rows written before it existed, and new ones
        assert [e.content for e in store.search("penguins")] == [
            "antarctic penguins live south",
            "where are the penguins",
        ]
        store.add_message(conversation.id, "user", "more penguins please")
        assert len(store.search("penguins")) == 3
    assert describe_store(path).schema_version == LATEST_VERSION


def test_version_2_store_gains_jobs_and_the_cache_and_keeps_its_data(data_dir: Path) -> None:
    from cortan.store.cache import CachedAnswer, CacheStore
    from cortan.store.jobs import JobStore

    path = get_store_path(data_dir)
    conn = build_at_version(path, 2)
    conn.execute("INSERT INTO conversations (id, created, updated) VALUES (1, 10, 20)")
    conn.execute(
        "INSERT INTO messages (conversation_id, role, content, created)"
        " VALUES (1, 'user', 'where are the penguins', 11)"
    )
    conn.close()

    with SessionStore.open(data_dir) as store:
        assert [e.content for e in store.search("penguins")] == ["where are the penguins"]
        old = store.get(1)  # stored before titles: listed by its first message, as before
        assert old is not None and old.title == "where are the penguins"
    assert describe_store(path).schema_version == LATEST_VERSION == 10
    with JobStore.open(data_dir) as jobs:
        job = jobs.start("k", name=None, source="stdin")
        jobs.record(job.id, 0, b"f", "done", "{}")
        assert jobs.count(job.id) == (1, 0)
    with CacheStore.open(data_dir, max_bytes=1 << 20, max_age=60) as cache:
        cache.put(b"k", CachedAnswer("ollama", "m", "hi", "stop", 1, 2, 0.0))
        assert cache.stats().entries == 1


def test_two_opens_of_a_fresh_file_migrate_once(data_dir: Path) -> None:
    first = SessionStore.open(data_dir)
    second = SessionStore.open(data_dir)
    try:
        first.create("a")
        assert second.get_by_name("a") is not None
    finally:
        first.close()
        second.close()


def test_many_first_opens_at_once_all_succeed(tmp_path: Path) -> None:
    """Several cortan processes starting on a machine with no store yet (threads here:
    sqlite3 lets go of the GIL, so they interleave for real). Two races were found this
    way: identity read in three snapshots that straddled another's migration ("not a
    cortan store"), and switching to WAL refused at once ("stayed locked")."""
    errors: list[str] = []

    def open_and_write(data: Path, start: threading.Barrier) -> None:
        try:
            start.wait()
            with SessionStore.open(data) as store, store.batch():
                store.add_message(store.create().id, "user", "hi")
        except Exception as exc:
            errors.append(repr(exc))

    for round_ in range(150):
        data, start = tmp_path / str(round_), threading.Barrier(4)
        threads = [threading.Thread(target=open_and_write, args=(data, start)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round_}"
        with SessionStore.open(data) as store:
            assert len(store.list_conversations()) == 4


def test_describe_store_creates_nothing(tmp_path: Path) -> None:
    info = describe_store(tmp_path / "nowhere")
    assert not info.exists
    assert info.path == tmp_path / "nowhere" / "cortan.db"
    assert not (tmp_path / "nowhere").exists()


def test_describe_store_counts(data_dir: Path) -> None:
    with SessionStore.open(data_dir) as store:
        conversation = store.create()
        for text in ("a", "b", "c"):
            store.add_message(conversation.id, "user", text)
        info = store.stats()
    assert info.exists
    assert (info.conversations, info.messages) == (1, 3)
    assert info.size_bytes > 0
    assert info.path == get_store_path(data_dir)
