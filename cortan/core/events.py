"""What one request's run tells its observers, in the order it happens, and its ending.

Layer: core. The engine's ``Chat.run`` publishes these on the bus for observers
(views, the store recorder, diagnostics, later metrics and the cache); none of
them starts the next stage. The ending also comes back to whoever ran the request.

Each is a ``NamedTuple`` (``TokenDelta`` a slotted dataclass: see there): cheap
to build (the bus moves millions a second) and to define (every ``cortan ask``
defines them: 70 us each, where a frozen slotted dataclass takes 600 us, issue 7),
immutable so no subscriber can change what the next one sees, and typed so
subscribers register for exactly what they handle. They are tuples, so two events
of different types with equal fields compare equal: subscribers dispatch on the
type (the bus does), never on equality alone.

    ChatPrepared   the messages about to be sent (guarded, composed, fitted)
    ChatStarted    the model that answers is known
    ThinkingDelta  one piece of the model's reasoning (never the answer)
    TokenDelta     one piece of the answer
    Notice         a dim one-line remark for the user
    ToolCalled     the model asked for a tool call (before the gate decides)
    ToolResult     how that call was decided, and what it gave back
    ChatFinished | ChatFailed | ChatCancelled     exactly one ends every request
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from cortan.core.messages import Message, ToolCall, Usage
from cortan.core.requests import ChatRequest


class ChatPrepared(NamedTuple):
    """The conversation is composed and fitted: these messages are about to be sent.

    The recorder commits the user's turn on it, before anything leaves the machine;
    a view shows which model it waits for.
    """

    request: ChatRequest
    model: str | None
    messages: tuple[Message, ...]


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


@dataclass(slots=True, unsafe_hash=True)
class ThinkingDelta:
    """One piece of a thinking model's reasoning: shown apart, never written as the answer.

    Its own type, so a view that writes the answer (a pipe, a file) never receives it;
    only views that show thinking subscribe.
    """

    request_id: int
    text: str


class Notice(NamedTuple):
    request_id: int
    text: str


class ToolCalled(NamedTuple):
    """The model asked to call a tool; the approval gate decides next.

    ``call.arguments`` is the model's text as it came: a view shows it made visible.
    """

    request_id: int
    call: ToolCall
    round: int  # 1 for the calls of the first answer, 2 for the next, ...


class ToolResult(NamedTuple):
    """A tool call's outcome: ``status`` is ``ok``, ``error`` (unknown tool, bad
    arguments, the tool failed) or ``refused`` (the gate said no, ``decided_by`` why).

    ``output`` is what the tool gave (or the reason it gave nothing), bounded; the
    model receives it wrapped and marked as data. The recorder stores it with the turn.
    """

    request_id: int
    call: ToolCall
    status: str
    output: str
    decided_by: str | None = None  # the gate's ``Verdict.by``; None: never reached it
    duration: float = 0.0


class Timings(NamedTuple):
    """Seconds, measured by cortan: to the first token, in all, and spent thinking."""

    first_token: float | None = None
    total: float = 0.0
    thinking: float | None = None  # from the first piece of reasoning to the answer


class ChatFinished(NamedTuple):
    request_id: int
    provider: str
    model: str
    content: str
    finish_reason: str
    usage: Usage = Usage()
    timings: Timings = Timings()
    sent: str | None = None  # the user's turn as the model was sent it
    thinking: str = ""  # the model's reasoning, apart from the answer
    data: object = None  # the answer parsed, when the request gave a schema
    cached: bool = False  # the answer came from the response cache, not from the model


class ChatFailed(NamedTuple):
    """The request ended in an error; ``content`` is whatever arrived before it."""

    request_id: int
    kind: str
    message: str
    exit_code: int = 1
    content: str = ""
    provider: str | None = None
    model: str | None = None
    sent: str | None = None  # the user's turn as it was sent; None: nothing was sent
    thinking: str = ""
    # A context overflow: the window and prompt size the server reported, if it did.
    window: int | None = None
    prompt_tokens: int | None = None
    # Rate limited: the seconds the server asked to wait, if it said (the gateway's
    # clients get them as Retry-After).
    retry_after: float | None = None


class ChatCancelled(NamedTuple):
    """The user interrupted; ``content`` is the partial answer, kept."""

    request_id: int
    content: str = ""
    provider: str | None = None
    model: str | None = None
    sent: str | None = None  # the user's turn as it was sent; None: nothing was sent
    thinking: str = ""
    # Seconds from the request to its first piece, when one came: most of an editor's
    # requests are cancelled after it, and time to first token is measured on them too.
    first_token: float | None = None


ChatEnded = ChatFinished | ChatFailed | ChatCancelled
