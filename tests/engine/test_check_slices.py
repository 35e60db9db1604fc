"""A schema check's first pass is sliced by its own CPU time, not by the clock.

:class:`cortan.engine.checks.SchemaChecks` gives each check a short first pass and runs
one that spends it again, whole, where long checks wait (and where the gateway's door
refuses more than a few with 503). Sliced by the clock, a small check that waited for
the interpreter's lock (held by a long check's ``regex`` compile, in C) was taken for a
long one: seen as a 503 for a small schema under a flood of slow ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cortan.engine.bounds import budgeted, spend
from cortan.engine.checks import SchemaChecks


def _counted(work: Callable[[], object]) -> tuple[list[int], Callable[[], str]]:
    """A check doing ``work`` in its budget, and the list its runs are counted in."""
    runs: list[int] = []

    def check() -> str:
        runs.append(1)
        with budgeted():
            work()
            spend()
        return "checked"

    return runs, check


async def test_a_check_that_waits_but_works_little_ends_in_its_first_pass() -> None:
    checks = SchemaChecks(first_slice=0.02)
    runs, check = _counted(lambda: time.sleep(0.1))  # waiting, as on the lock: no CPU
    try:
        assert await checks.check(check, refusable=True) == "checked"
    finally:
        checks.close()
    assert len(runs) == 1  # was 2: run again whole, as a long check


async def test_a_check_that_works_past_its_slice_is_run_again_whole() -> None:
    def work() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            sum(range(10_000))  # some 0.1 ms of work a step, far under the steps' bound
            spend()

    checks = SchemaChecks(first_slice=0.02)
    runs, check = _counted(work)
    try:
        assert await checks.check(check, refusable=True) == "checked"
    finally:
        checks.close()
    assert len(runs) == 2
    assert checks.long_checks == 0
