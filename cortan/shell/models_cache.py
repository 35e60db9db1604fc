"""Model names for completion and ``/models``, fetched in the background and cached.

The fetch runs in a thread with its own event loop and its own services (made by
the factory the composition root hands in: clients belong to the loop that made
them), so the prompt never waits for it: importing a provider SDK costs up to a second of
CPU and a provider that is down can take the whole connect timeout. A provider
that fails just contributes no names (its error is kept for ``/models``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from cortan.core.startup import resume_collector

if TYPE_CHECKING:
    from cortan.core.messages import ModelInfo
    from cortan.engine.catalog import Listing


class ModelLister(Protocol):
    """What the cache asks of the services it makes in its thread."""

    async def list_models(self, *, details: bool = False) -> dict[str, Listing]: ...

    async def aclose(self) -> None: ...


class ModelCache:
    """Every configured provider's models, refreshed off the event loop's thread."""

    def __init__(self, make_lister: Callable[[], ModelLister], aliases: Sequence[str]) -> None:
        self._make_lister = make_lister
        self._aliases = list(aliases)
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
            models, errors = asyncio.run(fetch_models(self._make_lister))
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

    def describe(self, name: str) -> str | None:
        """What completion shows beside a model's name: its capabilities."""
        for model in self.models:
            if f"{model.provider}:{model.name}" == name and model.capabilities:
                return ", ".join(c for c in model.capabilities if c != "completion") or None
        return None

    def listing(self, provider: str) -> list[str] | None:
        """The model names ``provider`` listed; None when its list is not known."""
        with self._lock:
            if not self.loaded.is_set() or provider in self._errors:
                return None
            return [m.name for m in self._models if m.provider == provider]

    def names(self) -> list[str]:
        """``provider:model`` for every model, then the aliases."""
        qualified = [f"{m.provider}:{m.name}" for m in self.models]
        return [*qualified, *self._aliases]


async def fetch_models(
    make_lister: Callable[[], ModelLister],
) -> tuple[list[ModelInfo], dict[str, str]]:
    """Ask every provider at once; errors are kept by provider name."""
    lister = make_lister()
    try:
        results = await lister.list_models(details=True)  # capabilities for completion
    finally:
        await lister.aclose()
    models = [m for r in results.values() if isinstance(r, list) for m in r]
    errors = {name: str(r) for name, r in results.items() if not isinstance(r, list)}
    return models, errors
