"""The events that carry one prompt through cortan, in the order they happen.

Each is a frozen, slotted dataclass: cheap to build (the bus moves millions a
second), immutable so no subscriber can change what the next one sees, and
typed so subscribers register for exactly what they handle.

    ChatRequested  front end -> validator         raw prompt, raw stdin / files
    ChatValidated  validator -> context manager   decoded, normalised text
    ChatPrepared   context   -> model manager     the messages to send
    ChatStarted    model manager                  the model that answers is known
    TokenDelta     model manager                  one piece of the answer
    Notice         anyone                         a dim one-line remark for the user
    ChatFinished | ChatFailed | ChatCancelled     exactly one ends every request
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cortan.providers.base import Message, Usage


@dataclass(frozen=True, slots=True)
class Attachment:
    """Data that travels with a prompt (stdin, a file), still as bytes."""

    label: str
    data: bytes


@dataclass(frozen=True, slots=True)
class TextAttachment:
    """An attachment after validation: decoded and cleaned."""

    label: str
    text: str


@dataclass(frozen=True, slots=True)
class ChatRequested:
    request_id: int
    prompt: str
    attachments: tuple[Attachment, ...] = ()
    model: str | None = None
    system: str | None = None
    history: tuple[Message, ...] = ()
    options: tuple[tuple[str, object], ...] = ()
    allow_fallback: bool = True  # False: only the model asked for (``--no-fallback``)
    allow_secrets: bool = False  # True: send even what looks like a secret (the user said so)


@dataclass(frozen=True, slots=True)
class ChatValidated:
    request: ChatRequested
    prompt: str
    attachments: tuple[TextAttachment, ...]


@dataclass(frozen=True, slots=True)
class ChatPrepared:
    request: ChatRequested
    model: str | None
    messages: tuple[Message, ...]
    options: tuple[tuple[str, object], ...] = ()  # over the request's (Ollama's num_ctx)


@dataclass(frozen=True, slots=True)
class ChatStarted:
    request_id: int
    provider: str
    model: str


@dataclass(frozen=True, slots=True, init=False)
class TokenDelta:
    """One piece of an answer: the one event made per piece, millions a second.

    Its ``__init__`` is written out because a frozen dataclass's own sets each
    field through ``object.__setattr__``, which doubles the cost of building the
    event (issue 7, the bus benchmark). The instance stays frozen: only plain
    attribute assignment is refused, and that is all ``frozen`` ever guarded.
    """

    request_id: int
    text: str

    def __init__(self, request_id: int, text: str) -> None:
        _set_request_id(self, request_id)
        _set_text(self, text)


# The slots' own descriptors, which frozen's __setattr__ guard does not see.
_set_request_id = TokenDelta.__dict__["request_id"].__set__
_set_text = TokenDelta.__dict__["text"].__set__


@dataclass(frozen=True, slots=True)
class Notice:
    request_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds, measured by cortan: to the first token, and in all."""

    first_token: float | None = None
    total: float = 0.0


@dataclass(frozen=True, slots=True)
class ChatFinished:
    request_id: int
    provider: str
    model: str
    content: str
    finish_reason: str
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)


@dataclass(frozen=True, slots=True)
class ChatFailed:
    """The request ended in an error; ``content`` is whatever arrived before it."""

    request_id: int
    kind: str
    message: str
    exit_code: int = 1
    content: str = ""
    provider: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class ChatCancelled:
    """The user interrupted; ``content`` is the partial answer, kept."""

    request_id: int
    content: str = ""
    provider: str | None = None
    model: str | None = None


ChatEnded = ChatFinished | ChatFailed | ChatCancelled
