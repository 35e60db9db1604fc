"""The gateway's store writes, on a thread of their own, committed in groups.

Layer: store. In ``cortan serve`` every request writes a conversation, its question
and its answer. On the event loop's thread those writes were a fifth of the
gateway's CPU per request, and while SQLite worked (or checkpointed its log to
disk) no other request moved. Python's sqlite3 lets go of the interpreter while
SQLite runs a statement, so on a thread of its own that work runs beside the
event loop, on the machine's other core; the loop only hands each write over.

Writes run in the order they are handed over, one at a time, in the store's
grouped mode (:meth:`cortan.store.commits.CommittingStore.group_commits`): the first
write of a group begins a transaction, each write is a savepoint of it, and the
group is committed ``seconds`` after its first write, or when the writer closes, so
an ordinary stop (Ctrl-C, SIGTERM) keeps everything. What fails goes to
``on_lost``, one line on stderr in the gateway: the answer was already sent.

The writes waiting are bounded (``max_backlog``): past the bound, :meth:`Writer.room`
holds new requests (without blocking the event loop) until the thread is under it
again. Unbounded, a gateway answering faster than its thread could store (on two
busy cores, 6,900 writes were waiting after 8 s at 8 requests in flight) queued writes
without end: memory grew, SIGTERM waited for all of them, and the collector's full passes
over them grew with the backlog (5 ms, then 85 ms after 8 s), each holding every
request in flight. The requests held keep their places in the gateway's queues, so
a client that sends past the store's pace meets the queue's 429 ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cortan.core.errors import StoreError

if TYPE_CHECKING:
    from cortan.store.sessions import SessionStore

log = logging.getLogger(__name__)

Job = Callable[[], object]  # what a job returns is not used
#: Writes waiting past which new requests wait (two a request: its question, its answer).
MAX_BACKLOG = 512
_STOP: Job = lambda: None  # noqa: E731  (a marker, compared by identity)


class Writer:
    """Runs ``store``'s writes on one thread; attach it before the first write."""

    def __init__(
        self,
        store: SessionStore,
        *,
        seconds: float,
        on_lost: Callable[[StoreError], None],
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self._on_lost = on_lost
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._max_backlog = max_backlog
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiting_lock = threading.Lock()
        self._due: float | None = None  # when the open group is to be committed
        self._commit: Job | None = None
        store.on_lost = on_lost
        store.group_commits(self._schedule, seconds)
        store.writer = self
        self._thread = threading.Thread(target=self._run, name="cortan-store", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Run ``job`` on the writer's thread, after every job submitted before it."""
        self._jobs.put(job)

    @property
    def backlog(self) -> int:
        """Writes handed over and not yet run."""
        return self._jobs.qsize()

    async def room(self) -> None:
        """Return once the backlog is under ``max_backlog`` (at once, but when behind)."""
        if self._jobs.qsize() < self._max_backlog or not self._thread.is_alive():
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        with self._waiting_lock:
            self._waiting.append((loop, woken))
        # The writer has max_backlog jobs to run: after one of them it looks again.
        await woken

    def _wake(self, everyone: bool = False) -> None:
        """Let the held requests go once the backlog is under its bound again.

        Not at half of it: the held requests then waited for hundreds of writes and
        went together, and the p99 at 8 in flight doubled. Let go at once, they trickle
        in at the thread's pace (the backlog may pass the bound by two writes a
        request let go).
        """
        if not self._waiting or (not everyone and self._jobs.qsize() >= self._max_backlog):
            return
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, []
        for loop, woken in waiting:
            with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits
                loop.call_soon_threadsafe(_set, woken)

    def flush(self, timeout: float = 30) -> bool:
        """Wait until what was submitted so far is committed; False if it took too long."""
        if not self._thread.is_alive():
            return True  # closed: everything was committed as it stopped
        done = threading.Event()

        def commit_now() -> None:
            self._fire()
            done.set()

        self.submit(commit_now)
        return done.wait(timeout)

    def close(self) -> None:
        """Run and commit what is queued, then stop the thread."""
        if self._thread.is_alive():
            self.submit(_STOP)
            self._thread.join()

    def _schedule(self, seconds: float, commit: Job) -> None:
        # the store's first write of a group asks for its commit (on this thread)
        self._due, self._commit = time.monotonic() + seconds, commit

    def _fire(self) -> None:
        commit, self._commit, self._due = self._commit, None, None
        if commit is not None:
            commit()  # the store reports a failed commit to on_lost itself

    def _run(self) -> None:
        while True:
            wait = None if self._due is None else max(0.0, self._due - time.monotonic())
            try:
                job = self._jobs.get(timeout=wait)
            except queue.Empty:
                self._fire()
                continue
            if job is _STOP:
                self._fire()
                self._wake(everyone=True)
                return
            try:
                job()
            except StoreError as exc:
                self._on_lost(exc)
            except Exception:  # a bug: say it, and keep the other requests' writes going
                log.exception("cortan serve: a store write failed")
            if self._due is not None and time.monotonic() >= self._due:
                self._fire()
            self._wake()


def _set(woken: asyncio.Future[None]) -> None:
    if not woken.done():  # a held request whose client left was cancelled meanwhile
        woken.set_result(None)
