"""The models the gateway offers, as cortan names, asked of every provider at once.

Layer: serve. ``/v1/models`` and ``/api/tags`` list every model of every
configured provider as ``provider:model`` (the name that routes to it through
the gateway), then the aliases. Editors ask often; each provider is asked at
most every ``TTL`` seconds. A provider that cannot be reached is left out of the
list.

Each provider is asked on its own, and a listing waits at most ``WAIT`` seconds
for them: one that has not answered by then keeps the models it last listed (none
the first time) while its answer is awaited in the background, for the next
listing. Asked together, one host that took the connection and never answered (a
stuck Ollama) held every listing for the whole listing timeout, 15 s, longer than
editors wait for their model pickers.

A provider's listing that reached :data:`cortan.core.messages.MAX_MODELS` (the
providers read no more) is said once in the log when it is first seen cut, and on
every listing in an ``X-Cortan-Notice`` header, so a client knows the list is short.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

from cortan.core.errors import CortanError
from cortan.core.messages import get_cut_listings

if TYPE_CHECKING:
    from cortan.core.messages import ModelInfo
    from cortan.engine.catalog import Listing
    from cortan.serve.services import GatewayServices

log = logging.getLogger("cortan.serve")

TTL = 5.0
#: Seconds a listing waits for the providers still being asked.
WAIT = 3.0


class ModelList:
    """Every model name and who serves it, each provider asked at most every ``TTL`` s.

    One per gateway, shared by its endpoints; :meth:`aclose` when the gateway stops.
    """

    def __init__(self, services: GatewayServices) -> None:
        self._services = services
        self._listings: dict[str, list[ModelInfo]] = {}  # provider: its last good listing
        self._asked: dict[str, float] = {}  # provider: when it was last asked
        self._pending: dict[str, asyncio.Task[dict[str, Listing]]] = {}
        self._cut: dict[str, str] = {}  # provider: what to say of its listing, cut short

    async def _refresh(self) -> None:
        now = time.monotonic()
        for name in self._services.settings.providers:
            if name not in self._pending and now - self._asked.get(name, -TTL) >= TTL:
                self._asked[name] = now
                task = asyncio.ensure_future(self._services.list_models([name]))
                task.add_done_callback(functools.partial(self._listed, name))
                self._pending[name] = task
        if self._pending:
            await asyncio.wait(set(self._pending.values()), timeout=WAIT)

    async def aclose(self) -> None:
        """Stop asking: a listing still awaited is cancelled, its connection closed."""
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def _listed(self, name: str, done: asyncio.Task[dict[str, Listing]]) -> None:
        self._pending.pop(name, None)
        if done.cancelled() or done.exception() is not None:
            return  # the gateway is stopping
        listing = done.result().get(name)
        if isinstance(listing, CortanError) or listing is None:
            self._listings.pop(name, None)  # cannot be reached: left out
            return
        self._listings[name] = list(listing)
        cut = get_cut_listings(listing)
        if cut and name not in self._cut:
            log.warning("%s", cut[0])  # once, not at every refresh
        if cut:
            self._cut[name] = cut[0]
        else:
            self._cut.pop(name, None)

    def get_notices(self) -> list[str]:
        """What a listing's response says: each provider whose listing was cut short."""
        return [self._cut[name] for name in self._listings if name in self._cut]

    async def get_entries(self) -> list[tuple[str, str, ModelInfo | None]]:
        """``(name, owner, info)``: each provider's models, in the order of the settings
        (the owner the provider's name), then the aliases (owner ``alias``, no info)."""
        await self._refresh()
        settings = self._services.settings
        entries: list[tuple[str, str, ModelInfo | None]] = [
            (f"{info.provider}:{info.name}", info.provider, info)
            for name in settings.providers
            for info in self._listings.get(name, ())
        ]
        return entries + [(alias, "alias", None) for alias in settings.aliases]

    async def get_names(self) -> list[tuple[str, str]]:
        """``(name, owner)`` pairs: the provider's name, or ``alias``."""
        return [(name, owner) for name, owner, _ in await self.get_entries()]
