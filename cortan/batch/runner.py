"""The batch runner: every item of a job through the engine, side by side, resumably.

Layer: batch (a front end). It is handed its services (:class:`BatchServices`), the
job store, the input's records and the output, and runs like this::

    feed (a thread) ─► prepare ─► kept? ──────────────────────────────► writer ─► output
                          │        (done by an earlier run: its line)     ▲
                          └─► queue ─► workers ─► services.ask ─► record ─┘
                                                  (Chat.run)      (committed first)

* **Side by side.** ``workers`` requests run at once: by default a quarter more than
  the hosts that may answer take (every host's ``parallel``, over the providers of
  the model and its fallbacks), so that a slot that comes free is taken at once by a
  request already waiting for it. The engine gives each request a free slot on the
  least busy healthy host and keeps to the rate limits, so a host whose circuit
  opens is skipped and its items go to the others.
* **In order.** The writer keeps lines that finish early; how far the job may run
  ahead of its oldest unfinished item is ``window`` items, which bounds memory.
* **Resumable.** Each item is committed to the job store the moment it ends, before
  its line is written: ``kill -9`` loses only what was in flight, and the next run
  of the same command writes the kept line of every item that committed (asking
  none of them again) and runs the rest, failed ones included.
* **Stopping.** Ctrl-C cancels what is in flight (the engine ends each request
  cancelled; nothing of it is committed) and the job ends with a summary. So does a
  run of ``max_failures`` failed items in a row (a backend that is down fails every
  item: better to stop and say so than to fail ten thousand).

The outcome's exit code: 0 every item answered, 4 some failed (their lines say
why), 1 the job stopped on failures or could not go on, 130 interrupted, 141 the
reader of the output went away (``| head``), said by nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple, TextIO

from cortan.batch.feed import RecordFeed
from cortan.batch.inputs import Record
from cortan.batch.items import Prepared, RequestSpec, prepare
from cortan.batch.job import BEAT_EVERY
from cortan.batch.output import OutputWriter, is_kept_line, make_error_line, make_line
from cortan.batch.progress import ProgressView, Tally
from cortan.batch.services import BatchServices
from cortan.core.errors import CortanError, InputError, OutputClosedError
from cortan.core.events import ChatCancelled, ChatEnded, ChatFailed, ChatFinished, Notice
from cortan.store.jobs import ItemStatus, Job, JobStore

EXIT_OK, EXIT_FAILURE, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 4, 130
#: Seconds between two notices shown; the others are counted.
NOTICE_GAP = 2.0
MIN_WINDOW = 64


def get_workers(capacity: int) -> int:
    """Requests to keep going for hosts that take ``capacity`` at once: one ready per
    four slots (at least one) waits to take a slot the moment it comes free."""
    return max(1, capacity) + max(1, capacity // 4)


class Outcome(NamedTuple):
    """How a job ended: what it did, whether and why it stopped, the exit code."""

    tally: Tally
    stopped: str | None
    exit_code: int
    quiet: bool = False  # the reader of the output left: nothing more to say


class _Entry(NamedTuple):
    record: Record
    prepared: Prepared


class _Stop(NamedTuple):
    reason: str
    exit_code: int
    quiet: bool = False


class BatchRunner:
    """Runs one job; :meth:`run` returns its :class:`Outcome`."""

    def __init__(
        self,
        services: BatchServices,
        jobs: JobStore,
        job: Job,
        records: Iterator[Record],
        spec: RequestSpec,
        output: TextIO,
        progress: ProgressView,
        *,
        workers: int | None = None,
        ordered: bool = True,
        max_failures: int = 10,
        limit: int | None = None,
        tick: float = 10.0,
        count_total: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._services = services
        self._jobs = jobs
        self._job = job
        self._records = records
        self._spec = spec
        self._progress = progress
        self._workers = workers or get_workers(services.get_capacity([spec.model]))
        self._window = asyncio.Semaphore(max(MIN_WINDOW, 4 * self._workers))
        self._writer = OutputWriter(output, ordered=ordered, written=self._written)
        self._queue: asyncio.Queue[_Entry | None] = asyncio.Queue(self._workers)
        self._max_failures = max_failures
        self._limit = limit
        self._tick = tick
        self._count_total = count_total
        self._clock = clock
        self.tally = Tally(started=clock())
        self._read: int | None = None  # items in the input, once it has all been read
        self._ended = 0  # items whose line is out
        self._streak = 0  # failed in a row
        self._where: dict[int, str] = {}  # request id -> the item it asks, while in flight
        self._last_notice = -NOTICE_GAP
        self._hidden_notices = 0
        self._damaged = 0  # items whose kept line could not be trusted
        self._finished = asyncio.Event()
        self._stop: _Stop | None = None
        self._resuming = True  # whether any item may have a state to look up

    @property
    def workers(self) -> int:
        return self._workers

    async def run(self) -> Outcome:
        """Run the job to its end, or until it stops; the summary is the caller's."""
        self._progress.start(self.tally)
        feed = RecordFeed(self._records)
        tasks = [asyncio.create_task(self._produce(feed))]
        tasks += [asyncio.create_task(self._work()) for _ in range(self._workers)]
        tasks.append(asyncio.create_task(self._show_progress()))
        if self._count_total is not None:
            tasks.append(asyncio.create_task(self._count()))
        try:
            await self._finished.wait()
        except asyncio.CancelledError:  # Ctrl-C: stop cleanly, with a summary
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
            self._halt(_Stop("interrupted", EXIT_INTERRUPTED))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await feed.aclose()
            self._progress.stop()
        return self._outcome()

    def _outcome(self) -> Outcome:
        if self._hidden_notices:
            n = self._hidden_notices
            self._progress.log(f"({n} more notice{'s' if n != 1 else ''} not shown)")
        if self._damaged > 1:
            n = self._damaged - 1
            self._progress.log(f"({n} more damaged kept answer{'s' if n != 1 else ''} asked again)")
        if (stop := self._stop) is not None:
            return Outcome(self.tally, stop.reason, stop.exit_code, stop.quiet)
        code = EXIT_SOME_FAILED if self.tally.failed else EXIT_OK
        return Outcome(self.tally, None, code)

    def _halt(self, stop: _Stop) -> None:
        """Stop the job (the first reason wins)."""
        if self._stop is None:
            self._stop = stop
        self._finished.set()

    def _fail_job(self, exc: BaseException) -> None:
        if isinstance(exc, OutputClosedError):  # 141, as for `cortan ask | head`
            self._halt(_Stop("the reader of the output went away", exc.exit_code, quiet=True))
        elif isinstance(exc, CortanError):
            self._halt(_Stop(str(exc), exc.exit_code))
        else:
            self._halt(_Stop(f"internal error: {type(exc).__name__}: {exc}", EXIT_FAILURE))

    # -- reading -----------------------------------------------------------------------

    async def _produce(self, feed: RecordFeed) -> None:
        read = 0
        try:
            self._resuming = any(self._jobs.count(self._job.id))
            async for record in feed:
                if self._limit is not None and record.position >= self._limit:
                    break
                await self._window.acquire()
                read += 1
                await self._take(record)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail_job(exc)
            return
        self._read = self.tally.total = read
        self._check_finished()
        for _ in range(self._workers):
            await self._queue.put(None)

    async def _take(self, record: Record) -> None:
        """Run ``record``, or write its kept line, or fail it for its input."""
        try:
            prepared = prepare(record, self._spec)
        except InputError as exc:
            self._end_input_error(record, str(exc))
            return
        state = self._jobs.get_item(self._job.id, record.position) if self._resuming else None
        if state and state.status == "done" and state.fingerprint == prepared.fingerprint:
            if not is_kept_line(state.output, record.id):
                self._note_damaged(record)
                await self._queue.put(_Entry(record, prepared))
                return
            self.tally.kept += 1
            self._writer.add(record.position, state.output)
            self._progress.update()
            return
        await self._queue.put(_Entry(record, prepared))

    def _note_damaged(self, record: Record) -> None:
        """Say (for the first) that an item's kept line is damaged; it is asked again."""
        self._damaged += 1
        if self._damaged == 1:
            self._progress.log(
                f"{record.where}: the answer kept by an earlier run is damaged in the store: "
                "asking it again"
            )

    async def _count(self) -> None:
        assert self._count_total is not None
        try:
            total = await asyncio.to_thread(self._count_total)
        except Exception:  # only the display needs it
            return
        if self._read is None and total is not None:
            self.tally.total = total if self._limit is None else min(total, self._limit)
            self._progress.update()

    # -- running -----------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            while (entry := await self._queue.get()) is not None:
                request_id = self._services.next_id()
                self._where[request_id] = entry.record.where
                try:
                    request = entry.prepared.request._replace(request_id=request_id)
                    ended = await self._services.ask(request)
                finally:
                    del self._where[request_id]
                if isinstance(ended, ChatCancelled):
                    return  # the job is stopping; the item runs again next time
                self._end(entry, ended)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail_job(exc)

    def _end(self, entry: _Entry, ended: ChatEnded) -> None:
        record, prepared = entry.record, entry.prepared
        line = make_line(record.id, ended)
        status: ItemStatus = "done" if isinstance(ended, ChatFinished) else "failed"
        self._jobs.record(self._job.id, record.position, prepared.fingerprint, status, line)
        if isinstance(ended, ChatFinished):
            self.tally.done += 1
            self.tally.cached += ended.cached
            self.tally.tokens += ended.usage.completion_tokens or 0
            self._streak = 0
        elif isinstance(ended, ChatFailed):
            self._count_failure(record, ended.kind, ended.message)
        self._writer.add(record.position, line)
        self._progress.update()

    def _end_input_error(self, record: Record, message: str) -> None:
        line = make_error_line(record.id, "input", message)
        fingerprint = hashlib.sha256(message.encode("utf-8", "replace")).digest()[:16]
        self._jobs.record(self._job.id, record.position, fingerprint, "failed", line)
        self._count_failure(record, "input", message)
        self._writer.add(record.position, line)
        self._progress.update()

    def _count_failure(self, record: Record, kind: str, message: str) -> None:
        self.tally.add_failure(record.where, kind)
        where = record.where
        named = message.lower().startswith(where.lower())
        self._progress.log(message if named else f"{where}: {message}")
        self._streak += 1
        if self._max_failures and self._streak >= self._max_failures:
            self._halt(_Stop(f"stopped after {self._streak} items failed in a row", EXIT_FAILURE))

    # -- writing -----------------------------------------------------------------------

    def _written(self, position: int) -> None:
        self._ended += 1
        self._window.release()
        self._check_finished()

    def _check_finished(self) -> None:
        if self._read is not None and self._ended >= self._read:
            self._finished.set()

    # -- what the user sees ------------------------------------------------------------

    async def _show_progress(self) -> None:
        """Progress every tick; the job's beat now and then (this process still runs it)."""
        beaten = self._clock()
        while True:
            await asyncio.sleep(self._tick)
            self._progress.tick()
            if self._clock() - beaten >= BEAT_EVERY:
                beaten = self._clock()
                with contextlib.suppress(CortanError):  # the items' commits will say
                    self._jobs.beat(self._job.id, os.getpid())

    def on_notice(self, event: Notice) -> None:
        """A notice of the engine about one item (a fallback, a wait), shown now and then."""
        now = self._clock()
        if now - self._last_notice < NOTICE_GAP:
            self._hidden_notices += 1
            return
        self._last_notice = now
        where = self._where.get(event.request_id)
        self._progress.log(f"{where}: {event.text}" if where else event.text)
