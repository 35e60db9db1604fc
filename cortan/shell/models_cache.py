"""Model names for completion and ``/models``, fetched in the background and cached.

The fetch runs in a thread with its own event loop and its own model manager, so
the prompt never waits for it: importing a provider SDK costs up to a second of
CPU and a provider that is down can take the whole connect timeout. A provider
that fails just contributes no names (its error is kept for ``/models``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from cortan.engine.bus import EventBus
from cortan.engine.manager import ModelManager
from cortan.errors import CortanError
from cortan.startup import resume_collector

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.providers.base import ModelInfo


class ModelCache:
    """Every configured provider's models, refreshed off the event loop's thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._models: list[ModelInfo] = []
        self._errors: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self.loaded = threading.Event()

    def start(self) -> None:
        """Begin a refresh in the background (no-op while one is running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.loaded.clear()
        self._thread = threading.Thread(target=self._refresh, name="cortan-models", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait (a little) for a refresh under way, so its connections close cleanly."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _refresh(self) -> None:
        try:
            models, errors = asyncio.run(fetch_models(self._settings))
        finally:  # the shell's start-up is over, even with no provider configured
            resume_collector()
        with self._lock:
            self._models, self._errors = models, errors
        self.loaded.set()

    @property
    def models(self) -> list[ModelInfo]:
        with self._lock:
            return list(self._models)

    @property
    def errors(self) -> dict[str, str]:
        with self._lock:
            return dict(self._errors)

    def names(self) -> list[str]:
        """``provider:model`` for every model, then the aliases."""
        qualified = [f"{m.provider}:{m.name}" for m in self.models]
        return [*qualified, *self._settings.aliases]


async def fetch_models(settings: Settings) -> tuple[list[ModelInfo], dict[str, str]]:
    """Ask every provider at once; errors are kept by provider name."""
    manager = ModelManager(EventBus(), settings)
    names = list(settings.providers)

    async def one(name: str) -> list[ModelInfo] | str:
        try:
            return await manager.list_models(name)
        except CortanError as exc:
            return str(exc)

    try:
        results = await asyncio.gather(*(one(n) for n in names))
    finally:
        await manager.aclose()
    models = [m for r in results if isinstance(r, list) for m in r]
    errors = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, str)}
    return models, errors
