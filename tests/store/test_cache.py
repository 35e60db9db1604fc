"""The response cache's table: kept answers, their age limit and the size cap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.core.errors import StoreError
from cortan.store.cache import ROW_OVERHEAD, CachedAnswer, CacheStore, get_size


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock) -> Iterator[CacheStore]:
    with CacheStore.open(tmp_path / "data", max_bytes=1000, max_age=3600, clock=clock) as store:
        yield store


def answer(content: str = "hi", created: float = 1_000_000.0) -> CachedAnswer:
    return CachedAnswer("ollama", "llama3.2", content, "stop", 3, 4, created)


def test_an_answer_is_kept_and_handed_back(cache: CacheStore) -> None:
    assert cache.get(b"k") is None
    assert cache.put(b"k", answer("hello"))
    assert cache.get(b"k") == answer("hello")
    assert cache.get(b"k") == answer("hello")
    stats = cache.stats()
    assert (stats.entries, stats.bytes, stats.hits) == (1, get_size("hello"), 2)
    assert cache.put(b"k", answer("replaced"))  # the same key: replaced, counted once
    assert (cache.stats().entries, cache.stats().bytes) == (1, get_size("replaced"))


def test_an_answer_past_its_age_is_never_handed_out(cache: CacheStore, clock: Clock) -> None:
    cache.put(b"old", answer(created=clock.now))
    clock.now += 3601
    assert cache.get(b"old") is None
    assert cache.stats().entries == 0
    cache.put(b"a", answer(created=clock.now - 4000))  # already too old: swept by the next put
    cache.put(b"b", answer(created=clock.now))
    assert cache.stats().entries == 1


def test_past_the_cap_the_least_recently_used_go_first(cache: CacheStore, clock: Clock) -> None:
    text = "x" * (200 - ROW_OVERHEAD)  # 200 bytes each: five fit in 1000
    for n in range(5):
        clock.now += 1
        cache.put(b"%d" % n, answer(text, clock.now))
    clock.now += 1
    assert cache.get(b"0") is not None  # used: now the most recent
    clock.now += 1
    cache.put(b"5", answer(text, clock.now))
    assert cache.stats().bytes <= 1000
    assert cache.get(b"0") is not None
    assert cache.get(b"1") is None  # the least recently used went
    assert cache.get(b"5") is not None


def test_an_answer_larger_than_the_cap_is_not_kept(cache: CacheStore) -> None:
    assert not cache.put(b"big", answer("x" * 2000))
    assert cache.stats().entries == 0


def test_clear_all_or_one_models(cache: CacheStore) -> None:
    cache.put(b"a", answer())
    cache.put(b"b", CachedAnswer("openai", "gpt-4o", "x", "stop", None, None, 1_000_000.0))
    assert cache.clear(provider="openai", model="gpt-4o") == 1
    assert cache.clear(model="nope") == 0
    assert cache.clear() == 1
    assert cache.stats().entries == cache.stats().bytes == 0


def test_a_damaged_table_is_one_sentence(cache: CacheStore, tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "data" / "cortan.db")
    conn.execute("DROP TABLE response_cache")
    conn.close()
    with pytest.raises(StoreError, match=r"the session store .* failed: no such table"):
        cache.get(b"k")
