"""The model manager as the composition root builds it, over loopback servers.

Shared by the engine tests that drive the manager (hosts, capacity, limits): only time
is replaced, through the manager's ``clock``/``sleep``/``jitter`` arguments."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, TypeVar

from cortan.config.settings import Settings
from cortan.core.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ChatStarted,
    Notice,
    TokenDelta,
)
from cortan.core.requests import ChatRequest
from cortan.engine.bus import EventBus
from cortan.engine.chat import Chat
from cortan.engine.context import ContextManager
from cortan.engine.guard import Guard
from cortan.engine.hosts import HostState
from cortan.engine.manager import ModelManager
from tests.servers import FakeOpenAI

E = TypeVar("E")
ENDINGS = (ChatFinished, ChatFailed, ChatCancelled)


class Time:
    """A clock that moves only when the manager sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Harness:
    """A bus, a model manager on it, and every event it published, in order."""

    def __init__(self, settings: Settings) -> None:
        self.time = Time()
        self.bus = EventBus()
        self.events: list[object] = []
        for kind in (ChatStarted, TokenDelta, Notice, *ENDINGS):
            self.bus.subscribe(kind, self.events.append)
        self.manager = ModelManager(
            self.bus, settings, clock=self.time.clock, sleep=self.time.sleep, jitter=lambda: 0.5
        )
        context = ContextManager(system=None, settings=settings)  # no window lookups
        self.chat = Chat(self.bus, Guard(max_bytes=1 << 20), context, self.manager)
        self._ids = itertools.count(1)

    async def ask(self, model: str | None = None, *, fallback: bool = True) -> ChatEnded:
        request_id = next(self._ids)
        request = ChatRequest(request_id, "hi", model=model, allow_fallback=fallback)
        returned = await self.chat.run(request)
        (ended,) = self.of(ChatEnded, request_id)
        assert isinstance(ended, ENDINGS)
        assert returned == ended  # the ending comes back with the call and goes to observers
        return ended

    def of(self, kind: Any, request_id: int | None = None) -> list[Any]:
        kinds = ENDINGS if kind is ChatEnded else (kind,)
        return [
            e
            for e in self.events
            if isinstance(e, kinds) and (request_id is None or e.request_id == request_id)
        ]

    def host(self, url: str) -> HostState:
        (state,) = [s for s in self.manager.host_states() if s.url == url]
        return state


def providers(ollama_hosts: list[str], openai: FakeOpenAI | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"ollama": {"kind": "ollama", "hosts": ollama_hosts}}
    if openai is not None:
        url = openai.url + "/v1"
        found["openai"] = {"kind": "openai", "base_url": url, "api_key_env": "OPENAI_API_KEY"}
    return found


# -- several hosts and their breakers --------------------------------------------------
