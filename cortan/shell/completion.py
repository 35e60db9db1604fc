"""Completion at the prompt: slash commands with their help, then each command's argument.

``/`` offers every command with its one-line description; after a command the
argument completes by kind (model names from the background cache, file paths,
session and role names). Sources are callables, read at completion time, so a
list that arrives in the background shows up without rebuilding anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

if TYPE_CHECKING:
    from cortan.shell.commands import ArgKind, CommandTable

Source = Callable[[], Iterable[str]]


class ShellCompleter(Completer):
    """Completes ``/command`` and then the command's argument."""

    def __init__(
        self,
        commands: CommandTable,
        sources: dict[ArgKind, Source],
        notes: dict[ArgKind, Callable[[str], str | None]] | None = None,
    ) -> None:
        self._commands = commands
        self._sources = sources
        self._notes = notes or {}
        self._paths = PathCompleter(expanduser=True)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or text.startswith("//") or "\n" in text:
            return
        name, space, arg = text[1:].partition(" ")
        if not space:
            yield from self._command_names(name)
            return
        command = self._commands.get(name.lower())
        if command is None:
            return
        if command.arg == "path":
            yield from self._paths.get_completions(Document(arg), complete_event)
        elif command.arg in self._sources:
            note = self._notes.get(command.arg)
            yield from _matching(arg, self._sources[command.arg](), note)

    def _command_names(self, prefix: str) -> Iterable[Completion]:
        for command in self._commands:
            if command.name.startswith(prefix.lower()):
                yield Completion(
                    "/" + command.name,
                    start_position=-len(prefix) - 1,
                    display_meta=command.summary,
                )


def _matching(
    prefix: str, candidates: Iterable[str], note: Callable[[str], str | None] | None = None
) -> Iterable[Completion]:
    """Names starting with the prefix first, then names that merely contain it."""
    unique = list(dict.fromkeys(candidates))
    lowered = prefix.lower()
    first = [c for c in unique if c.lower().startswith(lowered)]
    then = [c for c in unique if lowered in c.lower() and c not in first]
    for candidate in [*first, *then]:
        meta = note(candidate) if note is not None else None
        yield Completion(candidate, start_position=-len(prefix), display_meta=meta)
