"""The recorder: the observer that writes each exchange into the session store.

Layer: store (imports the event types of core, nothing of the engine). The engine
never calls the store; the composition root subscribes a recorder as an essential
observer, and the recorder keeps the promise of docs/architecture.md ("The rules"):

* the user's turn is committed on ``ChatPrepared``, which ``Chat.run`` publishes
  before it routes and streams, so it is on disk before the request leaves (the
  gateway's store groups its commits, a few ms later: cortan.store.commits);
* the answer is committed on ``ChatFinished`` (complete, with usage and duration),
  ``ChatFailed`` (failed) or ``ChatCancelled`` (interrupted), with whatever text
  arrived, even none;
* the tool calls made while answering (``ToolResult``: the call, the gate's decision,
  the bounded output) are held until then and committed with the answer, in the same
  transaction (store version 7).

Which conversation a request belongs to is the front end's choice, told to the
recorder before it publishes: :meth:`Recorder.continue_conversation` (``ask -c``,
``/load``) or :meth:`Recorder.start_new` (every plain ``ask``, ``/new``). A new
conversation is created only when its first request is actually sent, so a
prompt the guard rejects leaves no empty conversation behind.

A store that fails (disk full, read-only, locked too long) never costs the user the
answer and never fails in silence: the question is still sent and the answer shown,
and when the answer has ended the recorder raises :class:`StoreError` (kind
``store``), so the request ends failed with the whole answer in it and one sentence
saying the exchange was not saved. Front ends decide what that means for the exit
code: ``cortan ask`` keeps 0 and warns unless the user asked for the log (``-c``,
``--session``), issue 15.

The last exchange kept (finished or interrupted: what a conversation goes on
with) is :attr:`Recorder.last_exchange`; a front end that replaces it (the REPL's
``/retry``, once the new answer has come) hands it to :meth:`Recorder.discard`,
so that continuing the conversation never sends the answer the user threw away.

Between a question and its answer the recorder holds that exchange open, keyed by
request id: its own correlation of two events, which lets a gateway or a batch run
requests side by side through one recorder. Nothing of the pipeline's result passes
through it; the ending comes back to the front end from ``Chat.run``. With
``each_request_new`` every request starts a conversation of its own (a batch),
instead of following the front end's current one (``ask``, the REPL).
With ``threads`` (the gateway), a request whose history is a stored conversation's
turns, word for word, goes on with that conversation, and any other starts one:
cortan/store/threads.py.

A store with a :class:`cortan.store.writer.Writer` (the gateway's) gets the same
writes, in the same order, on the writer's thread: the question's write is handed
over on ``ChatPrepared`` and the answer's on the ending, and what fails is told to
the writer's ``on_lost`` instead of ending the request (its answer is already on
its way to the client). No exchange is kept for ``/retry`` there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from cortan.core.errors import CortanError, StoreError, UsageError
from cortan.core.events import ChatEnded, ChatFailed, ChatFinished, ChatPrepared, ToolResult
from cortan.core.requests import ChatRequest, source_name
from cortan.core.text import one_line
from cortan.store.records import Conversation, Status
from cortan.store.sessions import TITLE_CHARS, SessionStore
from cortan.store.threads import Thread


class _Open(NamedTuple):
    """The exchange whose question is saved and whose answer is awaited."""

    request_id: int
    conversation_id: int | None  # None: the question could not be saved
    sent_at: float
    question_id: int | None = None  # the saved question, which /retry may take back
    error: StoreError | None = None  # why it was not saved, told when the answer has ended
    tools: list[ToolResult] | None = None  # the answer's tool calls, stored with it
    thread: Thread | None = None  # a gateway conversation's keys, before and after
    trace_id: str | None = None  # the gateway request's end-to-end id, on its messages


class Exchange(NamedTuple):
    """A question and its answer as stored: what :meth:`Recorder.discard` takes back."""

    conversation_id: int
    message_ids: tuple[int, ...]


class Recorder:
    """Writes requests and their answers to ``store`` as they happen."""

    def __init__(
        self,
        store: SessionStore,
        *,
        each_request_new: bool = False,
        threads: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.conversation_id: int | None = None
        """Where the next request goes; None means a new conversation, made on sending."""
        self.new_name: str | None = None
        self.each_request_new = each_request_new
        self.threads = threads
        self._clock = clock
        self._open: dict[int, _Open] = {}
        self._saved: dict[int, _Open] = {}  # the writer's thread's own: questions written
        self.last_exchange: Exchange | None = None
        """The last question stored with an answer that was kept (not a failed one)."""

    def continue_conversation(self, conversation_id: int) -> None:
        """Send the next requests to this existing conversation."""
        self.conversation_id, self.new_name = conversation_id, None

    def start_new(self, name: str | None = None) -> None:
        """Send the next request to a new conversation (named ``name``), made when it is sent."""
        self.conversation_id, self.new_name = None, name

    def fork(self, name: str | None = None) -> Conversation:
        """Copy the current conversation into a new one and send the next requests there.

        ``/fork`` and ``ask --fork``: the original stays as it was. The last
        exchange follows to its copy, so a ``/retry`` after a fork replaces the
        answer in the fork, never in the original. Nothing stored yet is a
        UsageError: there is nothing to copy.
        """
        if self.conversation_id is None:
            raise UsageError("nothing is stored in this conversation yet: there is nothing to fork")
        forked = self.store.fork(self.conversation_id, name)
        last = self.last_exchange
        self.last_exchange = None
        if last is not None and last.conversation_id == self.conversation_id:
            ids = tuple(forked.mapping[i] for i in last.message_ids if i in forked.mapping)
            self.last_exchange = Exchange(forked.conversation.id, ids)
        self.continue_conversation(forked.conversation.id)
        return forked.conversation

    def on_prepared(self, event: ChatPrepared) -> None:
        """Commit the user's turn before the model manager sends it."""
        request_id = event.request.request_id
        writer = self.store.writer
        if writer is None:
            self._open[request_id] = self._save_question(event)
            return
        self._open[request_id] = _Open(request_id, None, self._clock())

        def save() -> None:  # on the writer's thread, which alone touches _saved
            self._saved[request_id] = self._save_question(event)

        writer.submit(save)

    def _save_question(self, event: ChatPrepared) -> _Open:
        request = event.request
        system = next((m.content for m in event.messages if m.role == "system"), None)
        user = event.messages[-1].content if event.messages else request.prompt
        images = event.messages[-1].images if event.messages else ()
        trace_id = request.trace.request_id if request.trace is not None else None
        thread = None
        try:
            with self.store.batch():
                title = _title(request)
                if self.threads:
                    attached = [a.data for a in request.attachments]
                    thread = Thread(request.client, request.history, request.prompt, attached)
                    conversation_id = self._thread_for(event, system, title, thread)
                elif self.each_request_new:
                    conversation_id = self._create_for(event, system, title)
                else:
                    conversation_id = self._conversation_for(event.model, system)
                    if title:
                        self.store.entitle(conversation_id, title)
                question_id = self.store.add_message(
                    conversation_id, "user", user, images=images, request_id=trace_id
                )
        except CortanError as exc:
            error = StoreError(f"this exchange was not saved: {exc} (--no-log asks without saving)")
            return _Open(request.request_id, None, self._clock(), error=error)
        return _Open(
            request.request_id, conversation_id, self._clock(), question_id,
            thread=thread, trace_id=trace_id,
        )  # fmt: skip

    def _thread_for(
        self, event: ChatPrepared, system: str | None, title: str, thread: Thread
    ) -> int:
        """The stored conversation this request's history is, claimed (its system prompt
        now the request's); else a new one. The history a new one's request brought is
        not stored: the client keeps it, and a client whose history never matched (a
        few-shot script, 1,000 turns of 7 KB) made the store hold every copy of it."""
        if event.request.history:
            found = self.store.take_thread(thread.key(), system)
            if found is not None:
                return found
        return self._create_for(event, system, title)

    def _create_for(self, event: ChatPrepared, system: str | None, title: str) -> int:
        """A conversation of its own for this request, naming the client that sent it."""
        request = event.request
        trace_id = request.trace.request_id if request.trace is not None else None
        created = self.store.create(
            model=event.model,
            system=system,
            client=request.client,
            request_id=trace_id,
            title=title or None,
        )
        return created.id

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

    def on_tool(self, event: ToolResult) -> None:
        """Hold a tool call's outcome until its answer is stored (then with that answer)."""
        open_ = self._open.get(event.request_id)
        if open_ is None:
            return
        if open_.tools is None:
            open_ = open_._replace(tools=[])
            self._open[event.request_id] = open_
        assert open_.tools is not None
        open_.tools.append(event)

    def on_ended(self, event: ChatEnded) -> None:
        """Commit the answer, however the request ended."""
        open_ = self._open.pop(event.request_id, None)
        if open_ is None:
            return  # never sent (rejected input) or not recorded
        writer = self.store.writer
        if writer is None:
            self._save_answer(open_, event, self._clock() - open_.sent_at)
            return
        duration, tools = self._clock() - open_.sent_at, open_.tools

        def save() -> None:  # after the question's own write, on the writer's thread
            saved = self._saved.pop(event.request_id, None)
            if saved is not None:
                self._save_answer(saved._replace(tools=tools), event, duration)

        writer.submit(save)

    def _save_answer(self, open_: _Open, event: ChatEnded, duration: float) -> None:
        if open_.error is not None or open_.conversation_id is None:
            raise open_.error or StoreError("this exchange was not saved")
        try:
            with self.store.batch():
                answer_id = self._store_answer(open_, event, duration)
                self.store.add_tool_calls(answer_id, open_.tools or ())
        except CortanError as exc:
            raise StoreError(f"the answer was not saved: {exc}") from exc
        if isinstance(event, ChatFailed) or open_.question_id is None:
            return
        if self.store.writer is None:  # (the gateway, which has a writer, has no /retry)
            self.last_exchange = Exchange(open_.conversation_id, (open_.question_id, answer_id))

    def discard(self, exchange: Exchange) -> None:
        """Delete a stored exchange that the user replaced (``/retry``)."""
        try:
            self.store.delete_messages(exchange.conversation_id, exchange.message_ids)
        except CortanError as exc:
            raise StoreError(f"the answer /retry replaced is still stored: {exc}") from exc
        if self.last_exchange == exchange:
            self.last_exchange = None

    def _next_key(self, open_: _Open, event: ChatEnded) -> bytes | None:
        """What a gateway client sends to go on after this answer: its history with the
        answer in it (an interrupted one as far as it came), or, after a failure, the
        history it had, which a client that tries again sends once more. None when the
        conversation went on elsewhere while it was answered (``ask --session``): the
        client's history is no longer the conversation."""
        if open_.thread is None or open_.conversation_id is None or open_.question_id is None:
            return None
        if self.store.newest_message_id(open_.conversation_id) != open_.question_id:
            return None
        return (
            open_.thread.key()
            if isinstance(event, ChatFailed)
            else open_.thread.after(event.content)
        )

    def _store_answer(self, open_: _Open, event: ChatEnded, duration: float) -> int:
        conversation_id, trace_id = open_.conversation_id, open_.trace_id
        assert conversation_id is not None  # (checked by the caller)
        thread = self._next_key(open_, event)
        if isinstance(event, ChatFinished):
            return self.store.add_message(
                conversation_id, "assistant", event.content,
                model=event.model, provider=event.provider,
                prompt_tokens=event.usage.prompt_tokens,
                completion_tokens=event.usage.completion_tokens,
                duration=event.timings.total or duration, thinking=event.thinking,
                request_id=trace_id, thread=thread,
            )  # fmt: skip
        status: Status = "failed" if isinstance(event, ChatFailed) else "interrupted"
        return self.store.add_message(
            conversation_id, "assistant", event.content, status=status,
            model=event.model, provider=event.provider, duration=duration,
            thinking=event.thinking, request_id=trace_id, thread=thread,
        )  # fmt: skip


def _title(request: ChatRequest) -> str:
    """The prompt as typed, with what came with it named: ``summarise [stdin, file a.txt]``;
    "" when nothing was typed (the listing then shows the message as sent)."""
    if not request.prompt.strip():
        return ""
    named = _named([source_name(a.label) for a in request.attachments])
    return one_line(request.prompt, TITLE_CHARS - len(named)) + named


_PROMPT_CHARS = 40  # of a title, kept for the prompt however much came with it
_COUNTED = len(", and 99999 more]")


def _named(sources: list[str]) -> str:
    """What came with the prompt, each on one line, named while they fit beside 40
    characters of it, the rest counted: a file name holding a newline made a title of
    two lines, and sixty files a title cut off in the middle of a name."""
    room = widest = TITLE_CHARS - _PROMPT_CHARS - len(" [") - _COUNTED
    names: list[str] = []
    for source in sources:
        name = one_line(source, widest)
        if names and len(name) > room:
            break
        names.append(name)
        room -= len(name) + len(", ")
    if left := len(sources) - len(names):
        names.append(f"and {left} more")
    return f" [{', '.join(names)}]" if names else ""
