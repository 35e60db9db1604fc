"""The response cache as a stage of ``Chat.run``: what is looked up, kept, and told.

The pipeline is the real one (test_manager.py's harness over a loopback server),
with the cache on a real store in the test's folder; what the server was asked
shows whether an answer came from the model or from the cache.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cortan.config.settings import Settings
from cortan.core.events import ChatFinished, ChatStarted, Notice, TokenDelta
from cortan.core.messages import Message
from cortan.core.requests import ChatRequest
from cortan.engine.cache import AnswerCache, get_temperature, make_key
from cortan.store.cache import CacheStore
from cortan.store.db import get_store_path
from tests.engine.harness import Harness, providers
from tests.servers import FakeOllama, FakeOpenAI, Reply

_ids = itertools.count(1)


class Cached:
    """A harness whose Chat has a response cache on a store in ``folder``."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.h = Harness(settings)
        self.store = CacheStore.open(folder, max_bytes=1 << 20, max_age=3600)
        manager = self.h.manager
        self.h.chat.cache = AnswerCache(
            self.h.bus, settings, manager.router, self.store, get_digest=manager.get_digest
        )

    async def ask(self, prompt: str = "hi", **fields: Any) -> ChatFinished:
        request = ChatRequest(next(_ids), prompt, **fields)
        ended = await self.h.chat.run(request)
        assert isinstance(ended, ChatFinished), ended
        return ended

    async def aclose(self) -> None:
        await self.h.manager.aclose()
        self.store.close()


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., Cached]]:
    made: list[Cached] = []

    def make_cached(**values: Any) -> Cached:
        cached = Cached(Settings(**values), tmp_path / "data")
        made.append(cached)
        return cached

    yield make_cached
    for cached in made:
        await cached.aclose()


async def test_asked_for_the_second_identical_request_is_answered_from_the_cache(
    make: Callable[..., Cached], ollama: FakeOllama
) -> None:
    c = make(providers=providers([ollama.url]))
    first = await c.ask(cache=True)
    second = await c.ask(cache=True)
    assert (first.cached, second.cached) == (False, True)
    assert second.content == first.content == "Hello, world!"
    assert second.usage == first.usage
    assert (second.provider, second.model) == (first.provider, first.model)
    assert len(ollama.chat_requests) == 1
    # Observers hear a hit as an answer: started, its text, the ending.
    rid = second.request_id
    assert c.h.of(ChatStarted, rid) == [ChatStarted(rid, "ollama", "llama3.2")]
    assert c.h.of(TokenDelta, rid) == [TokenDelta(rid, "Hello, world!")]
    assert c.store.stats().hits == 1


async def test_not_asked_for_nothing_is_kept_or_looked_up(
    make: Callable[..., Cached], ollama: FakeOllama
) -> None:
    c = make(providers=providers([ollama.url]))
    await c.ask()
    await c.ask()
    await c.ask(cache=True)
    assert len(ollama.chat_requests) == 3
    assert (await c.ask(cache=False)).cached is False
    assert len(ollama.chat_requests) == 4


async def test_cache_models_turn_it_on_per_alias(
    make: Callable[..., Cached], ollama: FakeOllama
) -> None:
    c = make(
        providers=providers([ollama.url]),
        aliases={"fast": "ollama:llama3.2"},
        cache={"models": ["fast"]},
    )
    await c.ask(model="fast")
    assert (await c.ask(model="ollama:llama3.2")).cached  # the alias names the same model
    assert not (await c.ask(model="fast", cache=False)).cached  # --no-cache wins
    assert not (await c.ask(model="qwen2.5-coder:7b")).cached
    assert not (await c.ask(model="qwen2.5-coder:7b")).cached


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"system": "Be brief."}, {"system": "Be long."}),
        ({"options": (("seed", 1),)}, {"options": (("seed", 2),)}),
        ({"model": "llama3.2"}, {"model": "qwen2.5-coder:7b"}),
        ({"history": (Message("user", "a"), Message("assistant", "b"))}, {}),
    ],
    ids=["system", "options", "model", "history"],
)
async def test_anything_that_shapes_the_answer_is_in_the_key(
    make: Callable[..., Cached],
    ollama: FakeOllama,
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    c = make(providers=providers([ollama.url]))
    await c.ask(cache=True, **first)
    assert not (await c.ask(cache=True, **second)).cached
    assert (await c.ask(cache=True, **first)).cached
    assert not (await c.ask("another prompt", cache=True, **first)).cached


async def test_sampled_answers_are_not_cached_unless_settings_say(
    make: Callable[..., Cached], ollama: FakeOllama
) -> None:
    c = make(providers=providers([ollama.url]))
    hot = (("temperature", 0.7),)
    await c.ask(cache=True, options=hot)
    assert not (await c.ask(cache=True, options=hot)).cached
    (notice,) = [n.text for n in c.h.of(Notice) if "not cached" in n.text]  # said once
    assert (
        notice == "not cached: sampled at temperature 0.7 (cache.sampled = true caches these too)"
    )
    cold = (("temperature", 0),)
    await c.ask(cache=True, options=cold)
    assert (await c.ask(cache=True, options=cold)).cached
    sampled = make(providers=providers([ollama.url]), cache={"sampled": True})
    assert (await sampled.ask(cache=True, options=(("temperature", "0.3"),))).cached is False
    assert (await sampled.ask(cache=True, options=(("temperature", "0.3"),))).cached


async def test_a_fallbacks_answer_is_kept_under_the_model_that_gave_it(
    make: Callable[..., Cached], ollama: FakeOllama, openai_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    ollama.queue(Reply(status=404))  # the model is not there: fall back
    c = make(
        providers=providers([ollama.url], openai_server),
        fallback=["openai:gpt-4o-mini"],
        retry={"attempts": 1},
    )
    answered = await c.ask(cache=True)
    assert answered.provider == "openai"
    # Asked again, the first model answers now: its own answer, not the fallback's.
    again = await c.ask(cache=True)
    assert (again.provider, again.cached) == ("ollama", False)
    assert (await c.ask(cache=True, model="openai:gpt-4o-mini")).cached


async def test_a_store_that_fails_is_said_once_and_the_model_answers(
    make: Callable[..., Cached], ollama: FakeOllama, tmp_path: Path
) -> None:
    c = make(providers=providers([ollama.url]))
    conn = sqlite3.connect(get_store_path(tmp_path / "data"))
    conn.execute("DROP TABLE response_cache")  # as a damaged store would
    conn.close()
    for _ in range(2):
        assert (await c.ask(cache=True)).cached is False
    assert len(ollama.chat_requests) == 2
    said = [n.text for n in c.h.of(Notice) if "response cache" in n.text]
    assert len(said) == 1
    assert said[0].startswith("the response cache cannot be read: ")


async def test_each_gateway_request_hears_that_the_store_fails(
    make: Callable[..., Cached], ollama: FakeOllama, tmp_path: Path
) -> None:
    # Before: said once per process, so the gateway's second client (another program,
    # perhaps) learnt nothing of why its answer was not cached.
    c = make(providers=providers([ollama.url]))
    conn = sqlite3.connect(get_store_path(tmp_path / "data"))
    conn.execute("DROP TABLE response_cache")
    conn.close()
    for client in ("openai editor", "openai editor"):
        await c.ask(cache=True, client=client)
    said = [n.text for n in c.h.of(Notice) if "response cache" in n.text]
    read = [text for text in said if text.startswith("the response cache cannot be read: ")]
    written = [text for text in said if "cannot be written" in text]
    assert (len(read), len(written)) == (2, 2)


def test_the_key_covers_the_digest_and_ignores_option_order() -> None:
    messages = [Message("user", "hi")]
    key = make_key("ollama", "ollama", "llama3.2", "sha1", messages, [("a", 1), ("b", 2)])
    assert key == make_key("ollama", "ollama", "llama3.2", "sha1", messages, [("b", 2), ("a", 1)])
    assert key != make_key("ollama", "ollama", "llama3.2", "sha2", messages, [("a", 1), ("b", 2)])
    assert key != make_key("openai", "ollama", "llama3.2", "sha1", messages, [("a", 1), ("b", 2)])
    assert len(key) == 32


@pytest.mark.parametrize(
    ("options", "expected"),
    [((), None), ((("temperature", 0.5),), 0.5), ((("temperature", "1"),), 1.0),
     ((("temperature", "hot"),), None), ((("seed", 1),), None)],
)  # fmt: skip
def test_temperature_is_read_from_the_options(
    options: tuple[tuple[str, object], ...], expected: float | None
) -> None:
    assert get_temperature(options) == expected


async def test_ollamas_digest_is_part_of_the_key(
    make: Callable[..., Cached], ollama: FakeOllama
) -> None:
    c = make(providers=providers([ollama.url]))
    route = c.h.manager.resolve("llama3.2")
    digest = await c.h.manager.get_digest(route)
    assert digest is not None and len(digest) == 64  # what /api/tags lists
    listed = sum(1 for r in ollama.requests if r.path == "/api/tags")
    await c.h.manager.get_digest(route)
    assert sum(1 for r in ollama.requests if r.path == "/api/tags") == listed  # asked once
