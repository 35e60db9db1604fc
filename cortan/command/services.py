"""What command mode is handed: the engine's entry point and the settings, nothing more.

Layer: command (a front end). ``cortan.app.App`` is what production passes; the
REPL's ``/run`` passes its own ``ask`` so the exchange joins its conversation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.core.events import ChatEnded
    from cortan.core.requests import ChatRequest


class CommandServices(Protocol):
    """The engine, as command mode uses it."""

    settings: Settings

    def next_id(self) -> int:
        """A new request id, unique in this process."""
        ...

    async def ask(self, request: ChatRequest) -> ChatEnded:
        """Run one request through the engine; its ending, Ctrl-C included."""
        ...
