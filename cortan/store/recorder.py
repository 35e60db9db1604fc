"""The recorder: the bus subscriber that writes each exchange into the session store.

Layer: store (imports event types from the engine, nothing else of it). The model
layer never calls the store; ``App.attach_store`` subscribes a recorder, and the
recorder keeps the promise of DESIGN.md:

* the user's turn is committed on ``ChatPrepared``, subscribed ahead of the model
  manager, so it is on disk before the request leaves the machine;
* the answer is committed on ``ChatFinished`` (complete, with usage and duration),
  ``ChatFailed`` (failed) or ``ChatCancelled`` (interrupted), with whatever text
  arrived, even none.

Which conversation a request belongs to is the front end's choice, told to the
recorder before it publishes: :meth:`Recorder.continue_conversation` (``ask -c``,
``/load``) or :meth:`Recorder.start_new` (every plain ``ask``, ``/new``). A new
conversation is created only when its first request is actually sent, so a
prompt the validator rejects leaves no empty conversation behind.

A store that fails mid-way (disk full, locked too long) must not cost the user
the answer: the failure goes to ``warn`` as one sentence and the request goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cortan.engine.events import ChatEnded, ChatFailed, ChatFinished, ChatPrepared
from cortan.errors import CortanError
from cortan.store.records import Conversation, Status
from cortan.store.sessions import SessionStore

log = logging.getLogger(__name__)


class Recorder:
    """Writes requests and their answers to ``store`` as they happen."""

    def __init__(
        self,
        store: SessionStore,
        *,
        warn: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.conversation_id: int | None = None
        """Where the next request goes; None means a new conversation, made on sending."""
        self.new_name: str | None = None
        self._warn = warn or (lambda text: log.warning("%s", text))
        self._clock = clock
        self._pending: dict[int, tuple[int, float]] = {}  # request id: conversation, sent at

    def continue_conversation(self, conversation_id: int) -> None:
        """Send the next requests to this existing conversation."""
        self.conversation_id, self.new_name = conversation_id, None

    def start_new(self, name: str | None = None) -> None:
        """Send the next request to a new conversation (named ``name``), made when it is sent."""
        self.conversation_id, self.new_name = None, name

    def on_prepared(self, event: ChatPrepared) -> None:
        """Commit the user's turn before the model manager sends it."""
        system = next((m.content for m in event.messages if m.role == "system"), None)
        user = event.messages[-1].content if event.messages else event.request.prompt
        try:
            with self.store.batch():
                conversation_id = self._conversation_for(event.model, system)
                self.store.add_message(conversation_id, "user", user)
        except CortanError as exc:
            self._warn(f"this exchange is not being saved: {exc}")
            return
        self._pending[event.request.request_id] = (conversation_id, self._clock())

    def _conversation_for(self, model: str | None, system: str | None) -> int:
        current = self._find_current()
        if current is None:
            created = self.store.create(self.new_name, model=model, system=system)
            self.continue_conversation(created.id)
            return created.id
        self.continue_conversation(current.id)
        if current.system != system or (model and current.model != model):
            self.store.update(current.id, model=model or current.model, system=system)
        return current.id

    def _find_current(self) -> Conversation | None:
        """The conversation to add to; None to start one (also when it was deleted meanwhile)."""
        if self.conversation_id is not None:
            return self.store.get(self.conversation_id)
        # Another terminal may have started the same named session meanwhile: join it.
        return self.store.get_by_name(self.new_name) if self.new_name else None

    def on_ended(self, event: ChatEnded) -> None:
        """Commit the answer, however the request ended."""
        pending = self._pending.pop(event.request_id, None)
        if pending is None:
            return  # never sent (rejected input) or not recorded
        conversation_id, sent_at = pending
        try:
            self._store_answer(conversation_id, event, self._clock() - sent_at)
        except CortanError as exc:
            self._warn(f"the answer was not saved: {exc}")

    def _store_answer(self, conversation_id: int, event: ChatEnded, duration: float) -> None:
        if isinstance(event, ChatFinished):
            self.store.add_message(
                conversation_id, "assistant", event.content,
                model=event.model, provider=event.provider,
                prompt_tokens=event.usage.prompt_tokens,
                completion_tokens=event.usage.completion_tokens,
                duration=event.timings.total or duration,
            )  # fmt: skip
            return
        status: Status = "failed" if isinstance(event, ChatFailed) else "interrupted"
        self.store.add_message(
            conversation_id, "assistant", event.content, status=status,
            model=event.model, provider=event.provider, duration=duration,
        )  # fmt: skip
