"""The event bus: one handler per command, and outcomes delivered to observers in order.

A thin seam, not a framework. Two kinds of traffic cross it:

* **Commands.** A front end hands the bus a command (a ``ChatRequest``) with
  :meth:`EventBus.dispatch`; exactly one handler, registered with
  :meth:`EventBus.handle` (the engine's ``Chat.run``), takes it, and what the
  handler returns (the request's ending) comes back to the caller as the result of
  the awaited call. There is no lookup by id and no second handler.
* **Outcomes.** The handler publishes what happens (started, each piece, notices,
  the ending) for observers that registered for one exact event type, with a
  priority (lower runs first; ties run in subscription order). ``publish`` calls
  each observer in turn and awaits the ones that are coroutines before moving on,
  so a slow observer slows the publisher instead of letting a queue grow without
  limit. ``send`` does the same without a coroutine of its own while the observers
  are plain functions: it carries each piece of an answer.

No observer starts the next stage of a request: the stages are plain calls inside
the handler. What an observer's failure means depends on its work:

* an **essential** observer does the user's work (the view that writes the
  answer, the recorder that stores it). Its failure must be seen: the remaining
  observers of that event still run (so the recorder keeps what the view could not
  show), then :class:`cortan.core.errors.ObserverError` is raised to the
  publisher, which ends the request failed with one sentence and the partial kept;
* any other observer (diagnostics, later metrics) is logged and skipped: it never
  breaks the others or the request.

Cancellation (Ctrl-C) is not an error and passes through. There are no wildcard
topics, no persistence and no queue: the stream of an answer stays an async
iterator from provider to router, which republishes each piece as an event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cortan.core.errors import CortanError, ObserverError, UsageError

E = TypeVar("E")
R = TypeVar("R")
Handler = Callable[[E], Awaitable[None] | None]

log = logging.getLogger(__name__)


class EventBus:
    """Commands to their one handler; outcome events to their observers, by exact type."""

    def __init__(self) -> None:
        self._subscriptions: dict[type[Any], list[tuple[int, int, Handler[Any]]]] = {}
        self._handlers: dict[type[Any], tuple[Handler[Any], ...]] = {}
        self._essential: dict[Handler[Any], str] = {}
        self._commands: dict[type[Any], Callable[[Any], Awaitable[Any]]] = {}
        self._count = 0

    # -- commands ----------------------------------------------------------------------

    def handle(self, command_type: type[E], handler: Callable[[E], Awaitable[R]]) -> None:
        """Make ``handler`` the one taker of ``command_type`` (a second one is a bug)."""
        if command_type in self._commands:
            raise UsageError(f"{command_type.__name__} already has a handler")
        self._commands[command_type] = handler

    def dispatch(self, command: object) -> Awaitable[Any]:
        """Hand ``command`` to its handler; await the result to get what it returned."""
        try:
            handler = self._commands[type(command)]
        except KeyError:
            raise UsageError(f"nothing handles {type(command).__name__}") from None
        return handler(command)

    # -- observers ---------------------------------------------------------------------

    def subscribe(
        self,
        event_type: type[E],
        handler: Handler[E],
        *,
        priority: int = 0,
        essential: str | None = None,
    ) -> Callable[[], None]:
        """Call ``handler`` for every ``event_type`` published; returns an unsubscribe.

        ``essential`` names the user's work the handler does ("show the answer"): its
        failure is then raised to the publisher as an ObserverError whose sentence
        says what could not be done, instead of being logged and skipped.
        """
        self._count += 1
        entry = (priority, self._count, handler)
        self._subscriptions.setdefault(event_type, []).append(entry)
        if essential is not None:
            self._essential[handler] = essential
        self._rebuild(event_type)

        def unsubscribe() -> None:
            entries = self._subscriptions.get(event_type, [])
            if entry in entries:
                entries.remove(entry)
                self._rebuild(event_type)

        return unsubscribe

    def _rebuild(self, event_type: type[Any]) -> None:
        # The sorted tuple is what send() reads: no sorting on the hot path.
        entries = sorted(self._subscriptions[event_type], key=lambda e: (e[0], e[1]))
        self._handlers[event_type] = tuple(handler for _, _, handler in entries)

    def send(self, event: object) -> Awaitable[None] | None:
        """Deliver ``event`` to its plain observers now; return what is left to await.

        The publisher's hot path (one ``TokenDelta`` per piece of an answer): while the
        observers are plain functions, delivery is this one call and nothing is
        awaited. When one returns an awaitable, the rest of the delivery comes back as
        one to await, so order and back-pressure are as with ``publish``.
        """
        handlers = self._handlers.get(type(event), ())
        # Inline and counted by hand: enumerate() builds an iterator and a tuple per
        # handler, which doubled this loop's cost (measured: 0.27 against 0.12 us).
        done = 0
        for handler in handlers:
            done += 1  # noqa: SIM113
            try:
                result = handler(event)
            except Exception as exc:
                delivery = _Delivery(handlers, event, self._essential)
                delivery.failed(handler, exc)
                return delivery.run(done)
            if result is not None:
                delivery = _Delivery(handlers, event, self._essential)
                return delivery.finish(result, handler, done)
        return None

    async def publish(self, event: object) -> None:
        """Deliver ``event`` to each observer in order, awaiting coroutine handlers."""
        if (pending := self.send(event)) is not None:
            await pending


class _Delivery:
    """One event on its way through its observers; the first essential failure is kept."""

    __slots__ = ("essential", "event", "failure", "handlers")

    def __init__(
        self, handlers: tuple[Handler[Any], ...], event: object, essential: dict[Handler[Any], str]
    ) -> None:
        self.handlers = handlers
        self.event = event
        self.essential = essential
        self.failure: ObserverError | None = None

    def run(self, start: int = 0) -> Awaitable[None] | None:
        """Call the handlers from ``start`` until one returns an awaitable; the rest waits on it."""
        handlers, event = self.handlers, self.event
        for index in range(start, len(handlers)):
            handler = handlers[index]
            try:
                result = handler(event)
            except Exception as exc:
                self.failed(handler, exc)
                continue
            if result is not None:
                return self.finish(result, handler, index + 1)
        if self.failure is not None:
            raise self.failure
        return None

    async def finish(self, pending: Awaitable[None], handler: Handler[Any], rest: int) -> None:
        try:
            await pending
        except Exception as exc:
            self.failed(handler, exc)
        if (more := self.run(rest)) is not None:
            await more

    def failed(self, handler: Handler[Any], exc: Exception) -> None:
        work = self.essential.get(handler)
        if work is None:
            log.exception("observer %r failed on %s", handler, type(self.event).__name__)
            return
        log.debug("essential observer %r failed", handler, exc_info=True)
        if self.failure is None:
            self.failure = make_observer_error(work, exc)


def make_observer_error(work: str, exc: Exception) -> ObserverError:
    """One sentence for a failed essential observer: cortan's own errors keep theirs."""
    if isinstance(exc, ObserverError):
        return exc
    if isinstance(exc, CortanError):
        return ObserverError(str(exc), kind=getattr(exc, "kind", "observer"))
    if isinstance(exc, OSError):  # a full disk: its few words, not Python's errno text
        from cortan.core.errors import why_unreadable

        return ObserverError(f"could not {work}: {why_unreadable(exc)}")
    return ObserverError(f"could not {work}: {type(exc).__name__}: {exc}")
