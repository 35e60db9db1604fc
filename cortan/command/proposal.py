"""Asking the model for a command, a change to it, or a longer explanation.

Layer: command. Every request goes to the engine's one entry point (``ask``: the
app's, or the REPL's, which keeps its conversation in step), so the guard, the
fallback chain and the store apply as to any question. The command comes back as a
JSON document filling :data:`SCHEMA` (``ChatRequest.schema``: the engine checks it
with a real validator and asks once for a repair); one conversation holds the
request, every revision and every description, so "make it recursive" means
something.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from cortan.command.environment import Environment, system_prompt
from cortan.core.errors import CortanError
from cortan.core.events import ChatCancelled, ChatEnded, ChatFailed
from cortan.core.messages import Message
from cortan.core.requests import ChatRequest

#: What the model must answer: one command line and one line about it.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string"},
        "explanation": {"type": "string"},
    },
    "required": ["command", "explanation"],
    "additionalProperties": False,
}
#: Longest command taken from a model: a wall of text is not a command to approve.
MAX_COMMAND = 8192

Ask = Callable[[ChatRequest], Awaitable[ChatEnded]]


class Proposal(NamedTuple):
    command: str
    explanation: str


def model_failed(message: str, exit_code: int = 1) -> CortanError:
    """The model gave no usable command (its own words, or the engine's failure)."""
    error = CortanError(message)
    error.exit_code = exit_code  # 3 when the answer never filled the schema
    return error


class Interrupted(Exception):
    """Ctrl-C while the model was answering."""


class CommandModel:
    """One conversation with the model about one command."""

    def __init__(
        self,
        ask: Ask,
        next_id: Callable[[], int],
        env: Environment,
        *,
        model: str | None = None,
        history: Sequence[Message] = (),
    ) -> None:
        self._ask = ask
        self._next_id = next_id
        self._env = env
        self._model = model
        self._history: list[Message] = list(history)

    async def propose(self, words: str) -> Proposal:
        """A command for the request ``words``."""
        return await self._command(words)

    async def revise(self, change: str, current: str) -> Proposal:
        """The command again, changed as the user says (``current`` may have been edited)."""
        return await self._command(
            f"Change the command. It is now: {current}\nWhat to change: {change}"
        )

    async def describe(self, command: str) -> str:
        """A longer explanation of ``command``: each part, what it touches, what could go wrong."""
        prompt = (
            f"Explain this {self._env.shell} command in a few short lines: what each part "
            f"does, what it reads, changes or deletes, and what could go wrong.\n{command}"
        )
        ended = await self._send(prompt, None)
        return str(getattr(ended, "content", "")).strip()

    async def _command(self, prompt: str) -> Proposal:
        ended = await self._send(prompt, SCHEMA)
        data = getattr(ended, "data", None)
        if not isinstance(data, dict):
            raise model_failed("the model's answer held no command")
        command = str(data.get("command", "")).strip()
        explanation = " ".join(str(data.get("explanation", "")).split())
        if not command:
            why = f": {explanation}" if explanation else ""
            raise model_failed(f"the model gave no command{why}")
        if len(command) > MAX_COMMAND:
            raise model_failed(
                f"the model's command is {len(command)} characters long; "
                f"cortan takes commands up to {MAX_COMMAND}"
            )
        return Proposal(command, explanation)

    async def _send(self, prompt: str, schema: dict[str, Any] | None) -> ChatEnded:
        request = ChatRequest(
            self._next_id(),
            prompt,
            model=self._model,
            system=system_prompt(self._env),
            history=tuple(self._history),
            schema=schema,
            quiet=True,  # the dialogue shows the command; the JSON is no answer to draw
        )
        ended = await self._ask(request)
        if isinstance(ended, ChatCancelled):
            raise Interrupted
        if isinstance(ended, ChatFailed):
            raise model_failed(ended.message, ended.exit_code)
        self._history += [Message("user", prompt), Message("assistant", ended.content)]
        return ended
