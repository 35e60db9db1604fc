"""What the shell is handed: the narrow set of services it may use, as one protocol.

Layer: shell (a front end). The REPL never sees the composition root: it receives
an object with these members (``cortan.app.App`` is the one that production
passes in, a test may pass its own), and through them runs requests on the
engine's one entry point, resolves and lists models, measures a conversation and
reaches the session store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from cortan.config.settings import Settings
    from cortan.core.events import ChatEnded
    from cortan.core.messages import Message
    from cortan.core.requests import ChatRequest
    from cortan.engine.budget import ContextUsage
    from cortan.engine.catalog import Listing
    from cortan.engine.hosts import HostState
    from cortan.engine.routes import Route
    from cortan.store.recorder import Recorder
    from cortan.store.sessions import SessionStore


#: How a request reaches the engine: the REPL's own (its conversation, its Ctrl-C).
Ask = Callable[["ChatRequest"], Awaitable["ChatEnded"]]


class RunCommand(Protocol):
    """``/run WORDS``: command mode's dialogue on the REPL's terminal.

    The words become one shell command, asked for through ``ask`` with the
    conversation's ``history`` and ``model``; the person decides on ``input`` and
    ``output``. Returns the command's exit status, or None when nothing ran.
    """

    async def __call__(
        self,
        words: str,
        *,
        ask: Ask,
        model: str | None,
        history: Sequence[Message],
        input: Input,
        output: Output,
    ) -> int | None: ...


class ShellServices(Protocol):
    """The engine and the store, as the shell uses them."""

    settings: Settings
    store: SessionStore | None
    recorder: Recorder | None  # where the next exchange is stored; None: nothing is
    run_command: RunCommand | None  # command mode for /run; None: not wired

    def next_id(self) -> int:
        """A new request id, unique in this process."""
        ...

    async def ask(self, request: ChatRequest) -> ChatEnded:
        """Run one request through the engine; its ending, Ctrl-C included."""
        ...

    def resolve(self, name: str | None) -> Route:
        """The provider and model a name means (raises on a bad one)."""
        ...

    def host_states(self) -> list[HostState]:
        """Every host's circuit as this process saw it."""
        ...

    async def list_models(
        self, names: Sequence[str] | None = None, *, details: bool = False
    ) -> dict[str, Listing]:
        """Every provider's models, or why there are none."""
        ...

    async def measure(
        self, model: str | None, history: Sequence[Message], system: str | None
    ) -> ContextUsage:
        """How much of ``model``'s window a conversation takes."""
        ...

    async def list_tools(
        self,
        on_error: Callable[[str], Awaitable[None]],
        on_note: Callable[[str], Awaitable[None]] | None = None,
    ) -> list[tuple[str, str]]:
        """The tools a model may be offered (name, description); MCP servers start now.

        A server that cannot start goes to ``on_error``, what a listing left out to
        ``on_note``, the rest are listed; raises ToolError when there are no tools here.
        """
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...
