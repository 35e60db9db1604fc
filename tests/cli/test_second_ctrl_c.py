"""A second Ctrl-C during the clean stop the first one began (an impatient user).

asyncio raised it from its signal handler in whatever code ran; in a ``__del__``
(aiohttp's sessions have one) Python cannot raise, so the user saw "Exception
ignored" and a traceback, and the second Ctrl-C was lost: CI caught it once in
``cortan batch``. Driven in this process: ``run_async`` is what every command runs
its work in, and only a ``__del__`` running when the signal comes shows the fault.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from cortan.cli.runner import run_async


class Slow:
    def __del__(self) -> None:
        time.sleep(0.01)  # where the second Ctrl-C lands, most of the time


async def stopping_cleanly() -> str:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:  # the first Ctrl-C: a clean stop begins, as batch's
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # the stop frees objects that have a __del__
        Slow()
        await asyncio.sleep(0)
    return "the second Ctrl-C was lost"


@pytest.fixture(autouse=True)
def ctrl_c_restored() -> Iterator[None]:
    """The stopped work leaves later Ctrl-Cs quiet until the process ends: not pytest's."""
    yield
    signal.signal(signal.SIGINT, signal.default_int_handler)


def test_a_second_ctrl_c_during_a_clean_stop_is_raised_not_lost(
    capfd: pytest.CaptureFixture[str],
) -> None:
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        run_async(stopping_cleanly)
    assert "Exception ignored" not in capfd.readouterr().err


def test_one_ctrl_c_still_ends_the_work_as_before() -> None:
    async def waiting() -> None:
        await asyncio.sleep(30)

    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_async(waiting)
    assert time.monotonic() - start < 5


async def stopping_then_cancelled() -> None:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:  # the first Ctrl-C: a stop that takes a moment
        os.kill(os.getpid(), signal.SIGINT)  # the second, while it awaits
        await asyncio.sleep(1)
        raise


def test_a_second_ctrl_c_during_a_stop_that_awaits_is_still_keyboard_interrupt() -> None:
    """The second cancellation was left pending, so asyncio's Runner did not make the
    first KeyboardInterrupt: CancelledError escaped every command, with a traceback."""
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_async(stopping_then_cancelled)
    assert time.monotonic() - start < 5


def test_ctrl_c_once_the_work_stopped_is_not_raised_in_the_exit() -> None:
    """Ctrl-Cs after the work ended on one (ten pressed at once) raised in whatever ran
    as cortan exited: "Exception ignored in: <module 'threading'>" and a traceback."""

    async def waiting() -> None:
        await asyncio.sleep(30)

    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        run_async(waiting)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # where the Ctrl-C would have been raised
