"""A real gateway for each test: uvicorn on 127.0.0.1, port 0, in a thread of its own.

The gateway is wired by the composition root as ``cortan serve`` wires it, in front
of the fake upstreams of tests/servers; tests drive it with the real ``openai`` and
``ollama`` client libraries, httpx and a WebSocket client, over real sockets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cortan.store.sessions import SessionStore

TOKEN = "test-token-0123456789abcdef"


@dataclass
class Running:
    """A gateway serving in a background thread."""

    url: str = ""
    token: str | None = TOKEN
    data_dir: Path | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    thread: threading.Thread | None = None
    code: int | None = None
    error: BaseException | None = None
    gateway: Any = None
    store: SessionStore | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def stop_now(self, timeout: float = 20) -> None:
        alive = self.thread is not None and self.thread.is_alive()
        if alive and self.loop is not None and self.stop is not None and self.thread is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
            self.thread.join(timeout)
            assert not self.thread.is_alive(), "the gateway did not stop"

    def commit(self) -> None:
        """Commit the gateway's grouped writes now, on the store's writer thread."""
        if self.store is not None and self.store.writer is not None:
            assert self.store.writer.flush(), "the gateway's store writes did not finish"

    def conversations(self) -> list[Any]:
        assert self.data_dir is not None
        self.commit()
        with SessionStore.open(self.data_dir) as store:
            return store.list_conversations()

    def messages(self, conversation_id: int) -> list[Any]:
        assert self.data_dir is not None
        self.commit()
        with SessionStore.open(self.data_dir) as store:
            return store.messages(conversation_id)


def start_gateway(
    data_dir: Path | None,
    *,
    token: str | None = TOKEN,
    unchecked: dict[str, Any] | None = None,
    **serve: object,
) -> Running:
    """Load settings as ``cortan serve`` would (the environment, the config file) and serve.

    ``unchecked`` replaces settings without validating them: what no validation lets
    through today, for a test of how the gateway survives a fault of its own.
    """
    from cortan.app import App, make_gateway
    from cortan.config.load import load_settings
    from cortan.serve.server import Stopper, bind, event_loop
    from cortan.serve.server import serve as run

    settings = load_settings()
    if serve:
        settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=serve)})
    if unchecked:
        settings = settings.model_copy(update=unchecked)
    running = Running(token=token, data_dir=data_dir)

    async def main() -> None:
        store = SessionStore.open(data_dir) if data_dir is not None else None
        app = App.build(settings, concurrent=True)  # as `cortan serve` builds it
        gateway = make_gateway(app, token=token, store=store)
        sock = bind("127.0.0.1", 0)
        running.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        running.loop, running.stop = asyncio.get_running_loop(), asyncio.Event()
        running.gateway, running.store = gateway, store
        running.ready.set()
        try:
            running.code = await run(gateway, sock, stopper=Stopper(running.stop))
        finally:
            await app.aclose()
            if store is not None:
                store.close()

    def thread_main() -> None:
        try:
            with asyncio.Runner(loop_factory=event_loop()) as runner:  # uvloop, as served
                runner.run(main())
        except BaseException as exc:  # surfaced by the test that waits on it
            running.error = exc
            running.ready.set()

    running.thread = threading.Thread(target=thread_main, name="gateway", daemon=True)
    running.thread.start()
    assert running.ready.wait(20), "the gateway did not start"
    if running.error is not None:
        raise running.error
    return running


@pytest.fixture
def gateway_factory(isolated_env: Path) -> Iterator[Any]:
    started: list[Running] = []

    def factory(**options: Any) -> Running:
        running = start_gateway(isolated_env / "data", **options)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop_now()


@pytest.fixture
def gateway(gateway_factory: Any, ollama_env: Any) -> Running:
    """A gateway in front of the fake Ollama (the default model is on it)."""
    running: Running = gateway_factory()
    return running
