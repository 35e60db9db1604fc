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

from cortan.core.actions import Asker
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


def source_name(label: str) -> str:
    """How a sentence names an attachment: ``stdin``, ``file notes.txt``."""
    if label.startswith("File "):
        return "file " + label.removeprefix("File ")
    return label.removeprefix("Input from ")


class TextAttachment(NamedTuple):
    """An attachment after the guard: decoded and cleaned."""

    label: str
    text: str


class Trace(NamedTuple):
    """How one request is followed end to end, from the client through every hop.

    ``request_id`` is the client's ``X-Request-ID`` (or one made for it): returned to
    the client, logged and stored. ``traceparent`` is the W3C Trace Context header
    the providers pass upstream, so a server behind cortan can join the same trace.
    """

    request_id: str
    traceparent: str


class ChatRequest(NamedTuple):
    """One prompt to answer, with everything the engine needs to send it.

    ``client`` names a program outside cortan that sent the request (the gateway
    fills it from the API used and the client's own name); None for cortan's own
    front ends. Such a request's ``history`` came from that program and was never
    seen by the guard, so the guard scans it too before it may leave for a remote
    provider.
    """

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
    client: str | None = None  # the outside program that asked (the gateway's clients)
    trace: Trace | None = None  # the end-to-end request id and W3C traceparent
    # The response cache: True looks the answer up and keeps it (``--cache``), False never
    # (``--no-cache``), None as the settings say for this model (``cache.models``).
    cache: bool | None = None
    # Tools (docs/tools.md): True offers the model the tools cortan has (built-ins, MCP
    # servers); each call goes through the approval gate, which asks ``ask`` (the front
    # end's terminal prompt; None: no terminal, so only the allowlist approves).
    tools: bool = False
    ask: Asker | None = None
    # True: no answer view draws it; the front end shows the outcome its own way (the
    # REPL's /run shows the proposed command in its dialogue, not the model's JSON).
    quiet: bool = False
    # False: a conversation longer than the window fails (``context_overflow``) rather
    # than have earlier turns left out (a gateway client's ``X-Cortan-Trim: refuse``).
    trim: bool = True
