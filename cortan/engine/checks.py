"""Where JSON Schema checks run: three threads of their own, and a bound on what waits.

Layer: engine. A check of a schema, or of an answer against one, may take its whole
deadline (:data:`cortan.engine.bounds.DEADLINE`, 1 s), and a gateway client chooses
the schema. On asyncio's default pool (six threads on two cores, shared with
everything else that runs in a thread), 50 clients each sending a schema built to
take that second held every other request's checks behind theirs: a small schema's
request took 23.9 s instead of 8 ms, its three checks each waiting for some fifty
seconds of hostile ones to pass through six threads.

So every check runs here, in two passes:

- a first pass with a short slice of time (:data:`SLICE`): an ordinary schema is
  checked in a few milliseconds, and is done. A client's schema has a thread for
  this, and the answers already given have another, so that an answer's check never
  waits behind a flood of schemas at the door;
- a check that spends its slice is run again, whole, on a third thread, where long
  checks take turns. At most :data:`WAITING` of them wait there; one more that may be
  refused (a gateway client's schema, checked before anything is asked) is a
  :class:`~cortan.core.errors.BusyError` with the seconds to wait (the gateway's 503
  and ``Retry-After``). A check of an answer already given is never refused: it
  waits its turn, so no answer is lost to a busy gateway.

A thread cannot be stopped from outside, so each check keeps its own deadline
(:mod:`cortan.engine.bounds`), and a check whose caller has gone still counts until
its thread is free.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cortan.core.errors import BusyError
from cortan.engine.bounds import DEADLINE, SliceSpent, first_pass

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

T = TypeVar("T")

SLICE = 0.02  # seconds of a first pass: a small schema's check takes some 5 ms
WAITING = 4  # long checks that may wait for the long-check thread, beyond the one it runs


class SchemaChecks:
    """The threads every schema check runs on (one set per process: the composition
    root's, shared by the pipeline, the tool loop and the gateway's door)."""

    def __init__(self, *, waiting: int = WAITING, first_slice: float = SLICE) -> None:
        self.waiting = waiting
        self.first_slice = first_slice
        self._pools: tuple[ThreadPoolExecutor, ...] = ()  # door, answers, long checks
        self._lock = threading.Lock()
        self.long_checks = 0  # running or waiting on the long-check thread

    async def check(self, check: Callable[..., T], *args: object, refusable: bool = False) -> T:
        """``check(*args)``, run beside the event loop: a first pass, then whole if need
        be. ``refusable``: BusyError rather than a wait when long checks are queued."""
        door, answers, long = self._get_pools()
        quick = door if refusable else answers
        try:
            return await self._submit(quick, _sliced, self.first_slice, check, *args)
        except SliceSpent:
            pass
        with self._lock:
            if refusable and self.long_checks > self.waiting:
                raise BusyError(
                    f"cortan serve is checking {self.long_checks} other long schemas: "
                    "try again shortly",
                    math.ceil(self.long_checks * DEADLINE),
                )
            self.long_checks += 1
        return await self._submit(long, check, *args, then=self._done)

    @staticmethod
    async def _submit(
        pool: ThreadPoolExecutor,
        call: Callable[..., T],
        *args: object,
        then: Callable[[Future[T]], None] | None = None,
    ) -> T:
        future: Future[T] = pool.submit(call, *args)
        if then is not None:  # when its thread is done with it, or it was never begun
            future.add_done_callback(then)
        return await asyncio.wrap_future(future)

    def _get_pools(self) -> tuple[ThreadPoolExecutor, ...]:
        if not self._pools:
            from concurrent.futures import ThreadPoolExecutor

            self._pools = tuple(
                ThreadPoolExecutor(1, thread_name_prefix=f"cortan-check-{name}")
                for name in ("door", "answers", "long")
            )
        return self._pools

    def _done(self, future: Future[Any]) -> None:
        """One long check has left its thread (or was cancelled before it began)."""
        with self._lock:
            self.long_checks -= 1

    def close(self) -> None:
        """Let the threads go; checks waiting are dropped, one running ends by its deadline."""
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools = ()


def _sliced(seconds: float, check: Callable[..., T], *args: object) -> T:
    with first_pass(seconds):
        return check(*args)
