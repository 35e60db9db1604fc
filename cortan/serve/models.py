"""The models the gateway offers, as cortan names, asked of every provider at once.

Layer: serve. ``/v1/models`` and ``/api/tags`` list every model of every
configured provider as ``provider:model`` (the name that routes to it through
the gateway), then the aliases. Editors ask often; the list is kept for
``TTL`` seconds. A provider that cannot be reached is left out of the list.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cortan.core.errors import CortanError

if TYPE_CHECKING:
    from cortan.core.messages import ModelInfo
    from cortan.serve.services import GatewayServices

TTL = 5.0


class ModelList:
    """Every model name and who serves it, refreshed at most every ``TTL`` seconds."""

    def __init__(self, services: GatewayServices) -> None:
        self._services = services
        self._names: list[tuple[str, str]] = []
        self._infos: list[ModelInfo] = []
        self._when = -TTL

    async def _refresh(self) -> None:
        if time.monotonic() - self._when < TTL:
            return
        listings = await self._services.list_models()
        infos = [info for listing in listings.values() if not isinstance(listing, CortanError)
                 for info in listing]  # fmt: skip
        names = [(f"{info.provider}:{info.name}", info.provider) for info in infos]
        names += [(alias, "alias") for alias in self._services.settings.aliases]
        self._names, self._infos, self._when = names, infos, time.monotonic()

    async def get_names(self) -> list[tuple[str, str]]:
        """``(name, owner)`` pairs: the provider's name, or ``alias``."""
        await self._refresh()
        return self._names

    async def get_infos(self) -> list[ModelInfo]:
        await self._refresh()
        return self._infos
