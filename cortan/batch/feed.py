"""The input, read in a thread of its own and handed to the event loop as it arrives.

Layer: batch (a front end). Reading is blocking: stdin may wait minutes for a slow
producer (``tail -f | cortan batch``), a large file costs disk time, a folder its
walk. Done on the event loop, that would stall every request in flight; done one
record per thread hop, it would cost more than the record. So a daemon thread reads
records into a shared list, and the loop takes everything the list holds each time
it asks: the loop is woken only when it waits on an empty list, so a fast input
costs one hop per batch of records, and a slow one is handed over record by record,
the moment each arrives. (Records handed over in chunks of 256 waited for the chunk
to fill: two lines piped in by a producer still running were never asked.)

The thread waits while the list holds :data:`HELD_ITEMS` records or
:data:`HELD_BYTES` of input, so what is held at once stays bounded however large
the input is.

A daemon thread, not the loop's executor: a thread blocked on an idle stdin must not
keep the process from stopping on Ctrl-C (the executor is joined at the loop's end).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

from cortan.batch.inputs import Record

HELD_ITEMS = 1024
HELD_BYTES = 4 << 20
_POLL = 0.1  # seconds between checks whether the job stopped, while the list is full


class RecordFeed:
    """Records from ``records`` (read in a thread) as an async iterator."""

    def __init__(self, records: Iterator[Record]) -> None:
        self._records = records
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self._lock = threading.Condition()
        self._held: list[Record] = []
        self._held_bytes = 0
        self._ended = False  # the thread read the input to its end, or failed
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._read, name="cortan-batch-input", daemon=True)
        self._thread.start()

    async def __aiter__(self) -> AsyncIterator[Record]:
        while True:
            with self._lock:
                taken, self._held, self._held_bytes = self._held, [], 0
                ended, error = self._ended, self._error
                self._arrived.clear()
                self._lock.notify_all()  # room again for the thread
            for record in taken:
                yield record
            if not taken:
                if error is not None:
                    raise error
                if ended:
                    return
                await self._arrived.wait()

    def _read(self) -> None:
        error: BaseException | None = None
        try:
            for record in self._records:
                if not self._hold(record):
                    return
        except BaseException as exc:  # handed to the loop, raised there
            error = exc
        finally:
            close = getattr(self._records, "close", None)
            if close is not None:
                close()
        with self._lock:
            self._ended, self._error = True, error
            self._wake()

    def _hold(self, record: Record) -> bool:
        """Add ``record`` for the loop, waiting while the list is full; False once stopped."""
        with self._lock:
            while self._is_full() and not self._stopping:
                self._lock.wait(_POLL)
            if self._stopping:
                return False
            self._held.append(record)
            self._held_bytes += record.size
            if len(self._held) == 1:  # the loop may be waiting on an empty list
                self._wake()
        return True

    def _is_full(self) -> bool:
        return len(self._held) >= HELD_ITEMS or self._held_bytes >= HELD_BYTES

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._arrived.set)
        except RuntimeError:  # the loop is closed: nobody is left to read for
            self._stopping = True

    async def aclose(self) -> None:
        """Stop reading; a thread blocked on stdin is left to end with the process."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        await asyncio.to_thread(self._thread.join, _POLL * 5)
