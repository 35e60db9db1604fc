"""What the gateway is handed: the narrow set of services it uses, as one protocol.

Layer: serve (a front end). The gateway never sees the composition root: it gets
an object with these members (``cortan.app.App`` in production). Requests go to
the engine's one entry point (:meth:`GatewayServices.ask`); the pieces of each
answer come back to a :class:`Watcher` registered for that request's id alone
(:meth:`GatewayServices.watch`), so many requests stream side by side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.core.events import ChatEnded, ChatStarted, Notice, ThinkingDelta, TokenDelta
    from cortan.core.messages import ModelInfo
    from cortan.core.requests import ChatRequest
    from cortan.engine.catalog import Listing
    from cortan.engine.hosts import HostState
    from cortan.engine.routes import Route


class Watcher(Protocol):
    """Receives one request's outcomes as the engine publishes them.

    Essential to the request (its work is the client's answer): a watcher that
    raises fails the request visibly. ``on_delta`` may return an awaitable when the
    client reads more slowly than the model writes: the engine waits on it, which
    slows the upstream read instead of growing a buffer.
    """

    def on_started(self, event: ChatStarted) -> None: ...

    def on_delta(self, event: TokenDelta) -> Awaitable[None] | None: ...

    def on_thinking(self, event: ThinkingDelta) -> None: ...

    def on_notice(self, event: Notice) -> None: ...


class GatewayServices(Protocol):
    """The engine, as the gateway uses it."""

    settings: Settings

    def next_id(self) -> int:
        """A new request id, unique in this process."""
        ...

    async def ask(self, request: ChatRequest) -> ChatEnded:
        """Run one request through the engine; its ending, cancellation included."""
        ...

    def watch(self, request_id: int, watcher: Watcher) -> Callable[[], None]:
        """Send request ``request_id``'s outcomes to ``watcher``; returns the way to stop."""
        ...

    def resolve(self, name: str | None) -> Route:
        """The provider and model a name means (raises on a bad one)."""
        ...

    def host_states(self) -> list[HostState]:
        """Every host's circuit as this process saw it."""
        ...

    async def list_models(self, names: Sequence[str] | None = None) -> dict[str, Listing]:
        """Every provider's models, or why there are none."""
        ...

    async def show_model(self, name: str | None) -> ModelInfo:
        """What the server says of the model ``name`` means (raises when it has none)."""
        ...

    async def check_schema(self, schema: object) -> None:
        """Refuse a schema cortan will not use (UsageError), or BusyError when the
        threads schema checks run on are full: checked beside the event loop."""
        ...

    async def context_window(self, model: str | None) -> int:
        """The tokens of ``model``'s window that a conversation is fitted to."""
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...
