"""What the session store hands out: conversations, messages, a summary of the store.

Layer: store (stdlib only). Front ends may keep them after the store is closed;
treat them as read-only. They are slotted classes with their ``__init__`` written
out, comparing by value (``_Record``), because ``cortan ask`` imports this module
to log each exchange and issue 7 gives logging 5 ms in all: defining these three
as frozen dataclasses cost about 1.9 ms here, as named tuples 0.9 ms, written out
under 0.1 ms.

``StoredMessage`` carries ``role`` and ``content`` with the same meaning as
:class:`cortan.providers.base.Message`; the store does not import the provider
layer, so front ends convert (``Message(m.role, m.content, m.images)``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from cortan.core.images import Image

Role = Literal["system", "user", "assistant"]
Status = Literal["complete", "interrupted", "failed"]
STATUSES: tuple[Status, ...] = ("complete", "interrupted", "failed")


class _Record:
    """Equality and a readable repr from ``__slots__``, for the records below."""

    __slots__: tuple[str, ...] = ()
    __hash__ = None  # type: ignore[assignment]  # equal by value, and not frozen

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Conversation(_Record):
    """One conversation; ``title`` is the start of its first user message, for listings.

    ``client`` names the outside program that asked (a gateway request: the API it
    used and its own name) and ``request_id`` its end-to-end request id; both are
    None for conversations held at cortan's own prompt.
    """

    __slots__ = (  # noqa: RUF023 (in field order, for repr)
        "id", "name", "created", "updated", "model", "system", "message_count", "title",
        "client", "request_id",
    )  # fmt: skip

    def __init__(
        self,
        id: int,
        name: str | None,
        created: float,
        updated: float,
        model: str | None,
        system: str | None,
        message_count: int = 0,
        title: str = "",
        client: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.created = created
        self.updated = updated
        self.model = model
        self.system = system
        self.message_count = message_count
        self.title = title
        self.client = client
        self.request_id = request_id

    @property
    def label(self) -> str:
        """How listings name it: ``#7 name``, or ``#7`` when it has no name."""
        return f"#{self.id} {self.name}" if self.name else f"#{self.id}"


class StoredMessage(_Record):
    """One message as stored: the turn itself plus who answered, how it ended, what it cost.

    ``created`` is Unix seconds; ``duration`` is seconds from sending to the end of
    the answer (assistant messages only); ``thinking`` the model's reasoning, apart
    from the answer. ``conversation_name`` is filled in by the queries across
    conversations (``recent_messages``, ``search``); ``images`` by ``messages`` only;
    ``tool_calls`` (an answer's, issue 18) by ``messages`` and the log's queries.
    """

    __slots__ = (  # noqa: RUF023 (in field order, for repr)
        "id",
        "conversation_id",
        "role",
        "content",
        "created",
        "status",
        "model",
        "provider",
        "prompt_tokens",
        "completion_tokens",
        "duration",
        "thinking",
        "conversation_name",
        "images",
        "tool_calls",
        "request_id",
    )

    def __init__(
        self,
        id: int,
        conversation_id: int,
        role: Role,
        content: str,
        created: float,
        status: Status = "complete",
        model: str | None = None,
        provider: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        duration: float | None = None,
        thinking: str = "",
        conversation_name: str | None = None,
        images: tuple[Image, ...] = (),
        tool_calls: tuple[StoredToolCall, ...] = (),
        request_id: str | None = None,
    ) -> None:
        self.id = id
        self.conversation_id = conversation_id
        self.role = role
        self.content = content
        self.created = created
        self.status = status
        self.model = model
        self.provider = provider
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.duration = duration
        self.thinking = thinking
        self.conversation_name = conversation_name
        self.images = images
        self.tool_calls = tool_calls  # the tools the model called for this answer
        self.request_id = request_id  # the gateway request it came in or went out with

    @property
    def conversation_label(self) -> str:
        """``#7 name``, or ``#7``: the conversation as listings show it."""
        cid = self.conversation_id
        return f"#{cid} {self.conversation_name}" if self.conversation_name else f"#{cid}"


class StoredToolCall(_Record):
    """One tool call of an answer, as stored: what the model asked, what happened."""

    __slots__ = (  # noqa: RUF023 (in field order, for repr)
        "message_id",
        "name",
        "arguments",
        "status",
        "decided_by",
        "output",
        "duration",
    )

    def __init__(
        self,
        message_id: int,
        name: str,
        arguments: str,
        status: str,
        decided_by: str | None,
        output: str,
        duration: float | None,
    ) -> None:
        self.message_id = message_id
        self.name = name
        self.arguments = arguments
        self.status = status
        self.decided_by = decided_by
        self.output = output
        self.duration = duration


class StoreInfo(_Record):
    """A store at a glance, for ``cortan doctor`` and ``cortan sessions``.

    ``size_bytes`` counts the database and its write-ahead log. When ``exists`` is
    false nothing else is meaningful (no file has been created yet).
    """

    __slots__ = (  # noqa: RUF023 (in field order, for repr)
        "path",
        "exists",
        "schema_version",
        "size_bytes",
        "conversations",
        "messages",
        "journal_mode",
    )

    def __init__(
        self,
        path: Path,
        exists: bool,
        schema_version: int = 0,
        size_bytes: int = 0,
        conversations: int = 0,
        messages: int = 0,
        journal_mode: str = "",
    ) -> None:
        self.path = path
        self.exists = exists
        self.schema_version = schema_version
        self.size_bytes = size_bytes
        self.conversations = conversations
        self.messages = messages
        self.journal_mode = journal_mode


def select_history(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """The turns worth sending again when a conversation is continued.

    A question whose answer failed, or that never got one (the process was killed),
    is left out with its answer, as the REPL leaves out a failed turn: the user
    asks again. An interrupted answer stays (the user saw it); an empty one is
    dropped, keeping its question. A row in a role cortan never writes (a hand edit)
    is not sent, nor is the question it stands after.
    """
    kept: list[StoredMessage] = []
    for question, answer in itertools.pairwise(messages):
        if question.role == "user" and answer.role == "assistant" and answer.status != "failed":
            kept.append(question)
            if answer.content:
                kept.append(answer)
    return kept


# Rows as cortan wrote them, or as a hand edit or a disk error left them: SQLite keeps
# whatever a column is given ('yesterday' in a REAL column, a blob in a TEXT one), and
# each front end would fail on it its own way. Read through these, such a value becomes the
# nearest one cortan could have written, so a damaged message is still shown, exported
# and continued, and nothing downstream meets a type it was never promised.

#: The latest Unix time a date can show (the last day of year 9999, with a day to spare).
_LAST_TIME = 253_402_214_400.0


def as_text(value: object) -> str:
    """Stored text; a blob's bytes read as UTF-8 with U+FFFD for the bad ones."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def as_optional_text(value: object) -> str | None:
    return None if value is None else as_text(value)


def as_time(value: object) -> float:
    """A stored time, or the epoch when it is not one a date can show."""
    if isinstance(value, int | float) and 0 <= value <= _LAST_TIME:
        return float(value)
    return 0.0


def as_count(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def as_seconds(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None
