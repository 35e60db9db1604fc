"""What the session store hands out: conversations, messages, a summary of the store.

Layer: store (stdlib only). Named tuples, so front ends can keep them after the
store is closed: immutable, and about half the cost of frozen dataclasses to
define (0.9 against 1.9 ms here; ``cortan ask`` imports this module to log each
exchange, and issue 7 gives logging 5 ms in all).

``StoredMessage`` carries ``role`` and ``content`` with the same meaning as
:class:`cortan.providers.base.Message`; the store does not import the provider
layer, so front ends convert (``Message(m.role, m.content)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

Role = Literal["system", "user", "assistant"]
Status = Literal["complete", "interrupted", "failed"]
STATUSES: tuple[Status, ...] = ("complete", "interrupted", "failed")


class Conversation(NamedTuple):
    """One conversation; ``title`` is the start of its first user message, for listings."""

    id: int
    name: str | None
    created: float
    updated: float
    model: str | None
    system: str | None
    message_count: int = 0
    title: str = ""

    @property
    def label(self) -> str:
        """How listings name it: ``#7 name``, or ``#7`` when it has no name."""
        return f"#{self.id} {self.name}" if self.name else f"#{self.id}"


class StoredMessage(NamedTuple):
    """One message as stored: the turn itself plus who answered, how it ended, what it cost.

    ``created`` is Unix seconds; ``duration`` is seconds from sending to the end of
    the answer (assistant messages only). ``conversation_name`` is filled in by the
    queries across conversations (``recent_messages``, ``search``).
    """

    id: int
    conversation_id: int
    role: Role
    content: str
    created: float
    status: Status = "complete"
    model: str | None = None
    provider: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration: float | None = None
    conversation_name: str | None = None

    @property
    def conversation_label(self) -> str:
        """``#7 name``, or ``#7``: the conversation as listings show it."""
        cid = self.conversation_id
        return f"#{cid} {self.conversation_name}" if self.conversation_name else f"#{cid}"


class StoreInfo(NamedTuple):
    """A store at a glance, for ``cortan doctor`` and ``cortan sessions``.

    ``size_bytes`` counts the database and its write-ahead log. When ``exists`` is
    false nothing else is meaningful (no file has been created yet).
    """

    path: Path
    exists: bool
    schema_version: int = 0
    size_bytes: int = 0
    conversations: int = 0
    messages: int = 0
    journal_mode: str = ""


def select_history(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """The turns worth sending again when a conversation is continued.

    A question whose answer failed, or that never got one (the process was killed),
    is left out with its answer, as the REPL leaves out a failed turn: the user
    asks again. An interrupted answer stays (the user saw it); an empty one is
    dropped, keeping its question.
    """
    kept: list[StoredMessage] = []
    for i, message in enumerate(messages):
        if message.role == "user":
            answer = messages[i + 1] if i + 1 < len(messages) else None
            if answer is not None and answer.role == "assistant" and answer.status != "failed":
                kept.append(message)
        elif message.status != "failed" and message.content and kept and kept[-1].role == "user":
            kept.append(message)  # the answer to the question just kept
    return kept
