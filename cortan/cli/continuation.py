"""Which conversation a ``cortan ask`` belongs to, and what it brings along.

Layer: cli. Every ``ask`` is stored in a new conversation unless ``--no-log`` (or
``log = false``) says otherwise; ``-c`` continues the most recent conversation and
``--session NAME`` continues (or starts) a named one. Continuing sends the earlier
turns as history and keeps the conversation's system prompt and model, unless
``-s`` or ``-m`` override them. ``--session`` also takes an id (``7``, ``#7``:
what ``--json`` reports as ``conversation_id``), to go on with a conversation that
has no name; an id names a stored conversation, it never starts one. With
``--fork`` the conversation found is copied first and the exchange goes to the
copy (unnamed; ``--json`` reports its id), the original left as it was.

The store is opened here, before stdin is read or anything is sent, so a store
that cannot be used stops the command with one sentence instead of losing an
exchange. Reading commands never create the store file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cortan.core.errors import StoreError, StoreLockedError, UsageError

if TYPE_CHECKING:
    from cortan.app import App
    from cortan.config.settings import Settings
    from cortan.core.messages import Message
    from cortan.core.requests import ChatRequest
    from cortan.store import Conversation, SessionStore, StoredMessage
    from cortan.store.recorder import Recorder


def open_store(*, create: bool, reading: bool = False) -> SessionStore | None:
    """The store in cortan's data folder; None when it does not exist and ``create`` is off.

    ``reading``: the command only reads, so a store that cannot be written is opened
    read-only (see ``SessionStore.open``).
    """
    from cortan.config.paths import get_data_dir
    from cortan.store import SessionStore, get_store_path

    data_dir = get_data_dir()
    if not create and not os.path.lexists(get_store_path(data_dir)):
        return None
    return SessionStore.open(data_dir, reading=reading)


def _may_answer_unstored(exc: StoreError) -> bool:
    """Whether the store failed for its surroundings, not for a fault of its own: a
    read-only folder, a full disk, another process holding it locked."""
    from cortan.config.paths import get_data_dir
    from cortan.store import get_store_path
    from cortan.store.db import cannot_write

    return isinstance(exc, StoreLockedError) or cannot_write(get_store_path(get_data_dir()))


def to_history(messages: list[StoredMessage]) -> tuple[Message, ...]:
    """Stored turns as the messages a model is sent (see ``select_history``)."""
    from cortan.core.messages import Message
    from cortan.store.records import select_history

    return tuple(Message(m.role, m.content, m.images) for m in select_history(messages))


@dataclass
class Continuation:
    """The plan for one ``ask``: the store (if any), the conversation continued (if any)."""

    store: SessionStore | None = None
    conversation: Conversation | None = None
    new_name: str | None = None
    record: bool = False
    history: tuple[Message, ...] = ()
    fork: bool = False
    #: Why the exchange will not be stored though logging is on (a store that cannot be
    #: written): said once on stderr, and the answer comes all the same.
    unstored: str | None = None

    @property
    def log_required(self) -> bool:
        """The user asked for this exchange to be kept (``-c``, ``--session``), not just allowed."""
        return self.record and (self.conversation is not None or self.new_name is not None)

    def apply(self, request: ChatRequest) -> ChatRequest:
        """The request with the conversation's history, model and system prompt added."""
        found = self.conversation
        if found is None:
            return request
        system = request.system if request.system is not None else found.system
        model = request.model or found.model
        return request._replace(history=self.history, model=model, system=system)

    def attach(self, app: App) -> Recorder | None:
        """Subscribe the store's recorder to ``app``, aimed at the right conversation."""
        if self.store is None or not self.record:
            return None
        recorder = app.attach_store(self.store)
        if self.conversation is not None:
            recorder.continue_conversation(self.conversation.id)
            if self.fork:  # copied as the request goes out, not while options are read
                recorder.fork()
        else:
            recorder.start_new(self.new_name)
        return recorder

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def plan_continuation(
    settings: Settings,
    *,
    continue_last: bool,
    session: str | None,
    no_log: bool,
    fork: bool = False,
) -> Continuation:
    """Open the store as needed and find the conversation ``-c`` or ``--session`` names."""
    if continue_last and session is not None:
        raise UsageError("use either -c/--continue or --session NAME, not both")
    record = settings.log and not no_log
    if fork and not (continue_last or session is not None):
        raise UsageError("--fork copies a stored conversation: name it with -c or --session")
    if fork and not record:
        raise UsageError("--fork stores a copy, which --no-log (or log = false) forbids")
    if not (record or continue_last or session is not None):
        return Continuation()  # nothing to read or write: not even sqlite3 is imported
    from cortan.store.sessions import check_name, is_id

    by_id = session is not None and is_id(session)
    name = check_name(session) if session is not None and not by_id else None
    try:
        store = open_store(create=record)
    except StoreError as exc:
        if continue_last or session is not None or not _may_answer_unstored(exc):
            raise  # the log was asked for, or the store is wrong: nothing is sent
        # Logging is a bonus here: a read-only folder, a full disk or another process
        # holding the store does not refuse the answer (issue 15); the user hears why
        # it is not kept, once.
        return Continuation(unstored=f"{exc}; this exchange is not stored")
    plan = Continuation(store, new_name=name, record=record, fork=fork)
    try:
        plan.conversation = _find(store, continue_last, session if by_id else name)
        if fork and plan.conversation is None:
            raise UsageError(f"no stored conversation {session!r} to fork")
        if plan.conversation is not None and store is not None:
            plan.history = to_history(store.messages(plan.conversation.id))
    except BaseException:
        plan.close()
        raise
    return plan


def _find(store: SessionStore | None, continue_last: bool, ref: str | None) -> Conversation | None:
    """The conversation to continue: the latest (``-c``), or by name or id (``--session``)."""
    from cortan.store.sessions import is_id

    found = None
    if store is not None:
        found = store.latest() if continue_last else store.find(ref) if ref else None
    if continue_last and found is None:
        raise UsageError("there is no earlier conversation to continue: ask without -c first")
    if ref is not None and found is None and is_id(ref):
        number = ref.strip().lstrip("#")
        raise UsageError(
            f"no stored conversation #{number}: `cortan sessions list` shows the ids "
            "(an id names a stored conversation; a name starts a new one)"
        )
    return found
