"""What a front end asks of the engine: one :class:`ChatRequest`, with its attachments.

Layer: core. Every front end (``cortan ask``, the REPL, and the gateway and batch
runner to come) builds a ``ChatRequest`` and hands it to the engine's one entry
point, ``Chat.run``, directly or as a command on the bus. The request is raw:
attachments are still bytes, and nothing has been checked; the engine's guard
decides what may be sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from cortan.core.errors import UsageError
from cortan.core.messages import Message

#: How much a thinking model should think: on, off, or a level ("low", "medium", "high").
Think = bool | str | None
#: The words for it, on the command line and in the REPL.
THINK_VALUES: dict[str, bool | str] = {
    "on": True,
    "off": False,
    "low": "low",
    "medium": "medium",
    "high": "high",
}


def parse_think(word: str) -> Think:
    """``on``, ``off`` or a level as a request's ``think``; UsageError for anything else."""
    think = THINK_VALUES.get(word.strip().lower())
    if think is None:
        raise UsageError(f"thinking is one of {', '.join(THINK_VALUES)}, not {word!r}")
    return think


class Attachment(NamedTuple):
    """Data that travels with a prompt (stdin, a file), still as bytes."""

    label: str
    data: bytes


class TextAttachment(NamedTuple):
    """An attachment after the guard: decoded and cleaned."""

    label: str
    text: str


class ChatRequest(NamedTuple):
    """One prompt to answer, with everything the engine needs to send it."""

    request_id: int
    prompt: str
    attachments: tuple[Attachment, ...] = ()
    model: str | None = None
    system: str | None = None
    history: tuple[Message, ...] = ()
    options: tuple[tuple[str, object], ...] = ()
    allow_fallback: bool = True  # False: only the model asked for (``--no-fallback``)
    allow_secrets: bool = False  # True: send even what looks like a secret (the user said so)
    think: Think = None  # None: the server's default for the model
    schema: Mapping[str, Any] | None = None  # a JSON Schema the answer must fill
