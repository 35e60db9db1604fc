"""The events that carry one prompt through cortan, in the order they happen.

Each is a ``NamedTuple`` (``TokenDelta`` a slotted dataclass: see there): cheap
to build (the bus moves millions a second) and to define (every ``cortan ask``
defines them: 70 us each, where a frozen slotted dataclass takes 600 us, issue 7),
immutable so no subscriber can change what the next one sees, and typed so
subscribers register for exactly what they handle. They are tuples, so two events
of different types with equal fields compare equal: subscribers dispatch on the
type (the bus does), never on equality alone.

    ChatRequested  front end -> validator         raw prompt, raw stdin / files
    ChatValidated  validator -> context manager   decoded, normalised text
    ChatPrepared   context   -> model manager     the messages to send
    ChatStarted    model manager                  the model that answers is known
    TokenDelta     model manager                  one piece of the answer
    Notice         anyone                         a dim one-line remark for the user
    ChatFinished | ChatFailed | ChatCancelled     exactly one ends every request
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from cortan.providers.base import Message, Usage


class Attachment(NamedTuple):
    """Data that travels with a prompt (stdin, a file), still as bytes."""

    label: str
    data: bytes


class TextAttachment(NamedTuple):
    """An attachment after validation: decoded and cleaned."""

    label: str
    text: str


class ChatRequested(NamedTuple):
    request_id: int
    prompt: str
    attachments: tuple[Attachment, ...] = ()
    model: str | None = None
    system: str | None = None
    history: tuple[Message, ...] = ()
    options: tuple[tuple[str, object], ...] = ()
    allow_fallback: bool = True  # False: only the model asked for (``--no-fallback``)
    allow_secrets: bool = False  # True: send even what looks like a secret (the user said so)


class ChatValidated(NamedTuple):
    request: ChatRequested
    prompt: str
    attachments: tuple[TextAttachment, ...]


class ChatPrepared(NamedTuple):
    request: ChatRequested
    model: str | None
    messages: tuple[Message, ...]
    options: tuple[tuple[str, object], ...] = ()  # over the request's (Ollama's num_ctx)


class ChatStarted(NamedTuple):
    request_id: int
    provider: str
    model: str


@dataclass(slots=True, unsafe_hash=True)
class TokenDelta:
    """One piece of an answer: the one event made per piece, millions a second.

    The one event that is not frozen, and like every event read-only by contract: a
    frozen dataclass refuses assignment by routing each field of its ``__init__``
    through ``object.__setattr__`` (or, written out, the slots' own setters), which
    made building this event 1.7 times slower (2.9 against 4.9 M a second here),
    and building it is most of what the bus costs per piece (issue 7). A named
    tuple builds through a ``__new__`` written in Python: 260 ns here, against
    156 ns for this class.
    """

    request_id: int
    text: str


class Notice(NamedTuple):
    request_id: int
    text: str


class Timings(NamedTuple):
    """Seconds, measured by cortan: to the first token, and in all."""

    first_token: float | None = None
    total: float = 0.0


class ChatFinished(NamedTuple):
    request_id: int
    provider: str
    model: str
    content: str
    finish_reason: str
    usage: Usage = Usage()
    timings: Timings = Timings()


class ChatFailed(NamedTuple):
    """The request ended in an error; ``content`` is whatever arrived before it."""

    request_id: int
    kind: str
    message: str
    exit_code: int = 1
    content: str = ""
    provider: str | None = None
    model: str | None = None


class ChatCancelled(NamedTuple):
    """The user interrupted; ``content`` is the partial answer, kept."""

    request_id: int
    content: str = ""
    provider: str | None = None
    model: str | None = None


ChatEnded = ChatFinished | ChatFailed | ChatCancelled
