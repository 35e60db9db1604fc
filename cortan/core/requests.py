"""What a front end asks of the engine: one :class:`ChatRequest`, with its attachments.

Layer: core. Every front end (``cortan ask``, the REPL, and the gateway and batch
runner to come) builds a ``ChatRequest`` and hands it to the engine's one entry
point, ``Chat.run``, directly or as a command on the bus. The request is raw:
attachments are still bytes, and nothing has been checked; the engine's guard
decides what may be sent.
"""

from __future__ import annotations

from typing import NamedTuple

from cortan.core.messages import Message


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
    # The response cache: True looks the answer up and keeps it (``--cache``), False never
    # (``--no-cache``), None as the settings say for this model (``cache.models``).
    cache: bool | None = None
