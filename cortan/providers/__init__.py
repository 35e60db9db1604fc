"""Backends, one module per kind, loaded lazily by kind name.

Layer: providers. Imports the client libraries and config types only. The
built-in kinds register through the same table a third-party kind would use,
and their modules (and SDKs) are imported only when a provider of that kind is
made, so a run that talks to Ollama never imports openai.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from cortan.core.errors import ConfigError

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig, Timeouts
    from cortan.providers.base import Provider
    from cortan.providers.responses import BodyLimits


class ProviderFactory(Protocol):
    """Makes one provider for one URL; ``limits`` bound what its server may send back.

    ``concurrent``: the process sends many requests at once (the gateway), so the
    provider's HTTP client runs on aiohttp (:mod:`cortan.providers.transport`).
    """

    def __call__(
        self,
        name: str,
        url: str,
        config: ProviderConfig,
        timeouts: Timeouts,
        limits: BodyLimits | None = None,
        *,
        concurrent: bool = False,
    ) -> Provider: ...


#: kind -> "module:factory": a :class:`ProviderFactory`.
KINDS: dict[str, str] = {
    "ollama": "cortan.providers.ollama:make_provider",
    "openai": "cortan.providers.openai:make_provider",
}


def get_factory(kind: str) -> ProviderFactory:
    """Import the module for ``kind`` and return its factory."""
    try:
        target = KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown provider kind {kind!r}; known: {', '.join(KINDS)}") from None
    module_name, _, attr = target.partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module_name), attr)
    return factory
