"""Slash commands: the registry the shell dispatches on and the completer reads.

One :class:`SlashCommand` per command: its name, one line of help, what its
argument is (so completion knows to offer model names, paths or sessions) and
the handler. Handlers live in :mod:`cortan.shell.actions`, :mod:`cortan.shell.models`,
:mod:`cortan.shell.inputs` and :mod:`cortan.shell.sessions`; each is given a
:class:`Shell`, the few things a command may touch (the conversation, the services,
the output, sending a prompt), never the REPL's own class, so the handlers and the
loop do not import each other.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from rich.console import Console

    from cortan.core.events import ChatEnded
    from cortan.core.requests import ChatRequest
    from cortan.shell.conversation import Conversation
    from cortan.shell.models_cache import ModelCache
    from cortan.shell.services import ShellServices

ArgKind = Literal["model", "path", "session", "role", "setting", "think", "text", "none"]


class ExitShell(Exception):
    """Raised by /exit and /quit."""


class Shell(Protocol):
    """What a slash command is given: the running shell, as far as a command may reach."""

    services: ShellServices
    conversation: Conversation
    commands: CommandTable
    models: ModelCache
    session: PromptSession[str]
    console: Console  # the output; /copy writes its control sequence there

    @property
    def width(self) -> int:
        """Columns of the output, for tables that must not wrap."""
        ...

    def say(self, text: str) -> None: ...

    def dim(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    async def send(self, prompt: str) -> ChatEnded | None: ...

    async def run_request(self, request: ChatRequest) -> ChatEnded: ...


Handler = Callable[[Shell, str], Awaitable[None]]


class SlashCommand(NamedTuple):
    name: str
    summary: str
    usage: str
    arg: ArgKind
    handler: Handler


class CommandTable:
    """Commands by name, in the order ``/help`` lists them."""

    def __init__(self, commands: list[SlashCommand], aliases: dict[str, str]) -> None:
        self._commands = {c.name: c for c in commands}
        self._aliases = aliases

    def __iter__(self) -> Iterator[SlashCommand]:
        return iter(self._commands.values())

    def get(self, name: str) -> SlashCommand | None:
        return self._commands.get(self._aliases.get(name, name))

    def names(self) -> list[str]:
        return [*self._commands, *self._aliases]

    def suggest(self, name: str) -> str | None:
        """The nearest command name, for 'did you mean'."""
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        if close:
            return close[0]
        prefixed = [n for n in self.names() if n.startswith(name[:2])] if len(name) >= 2 else []
        return prefixed[0] if prefixed else None


class ParsedLine(NamedTuple):
    """A line the user entered: a command with its argument, or text to send."""

    command: str | None
    arg: str
    text: str


def parse_line(line: str) -> ParsedLine:
    """``/model x`` is a command; ``//etc`` is the text ``/etc``; anything else is text."""
    stripped = line.strip()
    if stripped.startswith("//"):
        return ParsedLine(None, "", line.lstrip()[1:])
    if stripped.startswith("/") and "\n" not in stripped:
        name, _, arg = stripped[1:].partition(" ")
        return ParsedLine(name.lower(), arg.strip(), line)
    if stripped.startswith("/") and "\n" in stripped:
        first, _, rest = stripped.partition("\n")
        name, _, arg = first[1:].partition(" ")
        return ParsedLine(name.lower(), (arg + "\n" + rest).strip(), line)
    return ParsedLine(None, "", line)
