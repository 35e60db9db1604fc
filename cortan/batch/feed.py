"""The input, read in a thread of its own and handed to the event loop a chunk at a time.

Layer: batch (a front end). Reading is blocking: stdin may wait minutes for a slow
producer (``tail -f | cortan batch``), a large file costs disk time, a folder its
walk. Done on the event loop, that would stall every request in flight; done one
record per thread hop, it would cost more than the record. So a daemon thread reads
records in chunks (up to :data:`CHUNK_ITEMS` of them, or :data:`CHUNK_BYTES` of
input) and hands each chunk over through a small queue: the thread waits while the
job is busy, so what is held at once stays bounded however large the input is.

A daemon thread, not the loop's executor: a thread blocked on an idle stdin must not
keep the process from stopping on Ctrl-C (the executor is joined at the loop's end).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Iterator

from cortan.batch.inputs import Record

CHUNK_ITEMS = 256
CHUNK_BYTES = 1 << 20
DEPTH = 4  # chunks waiting at most
_POLL = 0.1  # seconds between checks whether the job stopped, while the queue is full


class RecordFeed:
    """Records from ``records`` (read in a thread) as an async iterator."""

    def __init__(self, records: Iterator[Record]) -> None:
        self._records = records
        self._queue: asyncio.Queue[list[Record] | BaseException | None] = asyncio.Queue(DEPTH)
        self._loop = asyncio.get_running_loop()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, name="cortan-batch-input", daemon=True)
        self._thread.start()

    async def __aiter__(self) -> AsyncIterator[Record]:
        while (chunk := await self._queue.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            for record in chunk:
                yield record

    def _read(self) -> None:
        try:
            chunk: list[Record] = []
            size = 0
            for record in self._records:
                chunk.append(record)
                size += record.size
                if len(chunk) >= CHUNK_ITEMS or size >= CHUNK_BYTES:
                    if not self._hand_over(chunk):
                        return
                    chunk, size = [], 0
            if chunk and not self._hand_over(chunk):
                return
            self._hand_over(None)
        except BaseException as exc:  # handed to the loop, raised there
            self._hand_over(exc)
        finally:
            close = getattr(self._records, "close", None)
            if close is not None:
                close()

    def _hand_over(self, item: list[Record] | BaseException | None) -> bool:
        """Queue ``item`` for the loop, waiting while the queue is full; False once stopped."""
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        except RuntimeError:  # the loop is closed
            return False
        while True:
            try:
                future.result(_POLL)
                return True
            except concurrent.futures.TimeoutError:
                if self._stopping.is_set():
                    future.cancel()
                    return False
            except concurrent.futures.CancelledError:
                return False

    async def aclose(self) -> None:
        """Stop reading; a thread blocked on stdin is left to end with the process."""
        self._stopping.set()
        await asyncio.to_thread(self._thread.join, _POLL * 5)
