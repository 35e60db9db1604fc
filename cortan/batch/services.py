"""What the batch runner is handed: the narrow set of services it may use, as one protocol.

Layer: batch (a front end). The runner never sees the composition root: it receives
an object with these members (``cortan.app.App`` is the one production passes in)
and runs every item through the engine's one entry point, ``ask``, which returns
the ending in every case, Ctrl-C included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cortan.core.events import ChatEnded
    from cortan.core.requests import ChatRequest


class BatchServices(Protocol):
    """The engine, as a batch uses it."""

    def next_id(self) -> int:
        """A new request id, unique in this process."""
        ...

    async def ask(self, request: ChatRequest) -> ChatEnded:
        """Run one request through the engine; its ending, cancellation included."""
        ...

    def get_capacity(self, names: Sequence[str | None]) -> int:
        """Requests the hosts that may answer these model names take at once."""
        ...
