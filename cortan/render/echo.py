"""Keeping the terminal from echoing keys into an answer as it streams.

Layer: render. While an answer streams, the terminal is in cooked mode (the line
editor is not reading), so the kernel echoes what is typed wherever the cursor
stands: Ctrl-C as ``^C`` in the middle of the answer ("and a^C lon"), and letters
typed ahead too ("molecules of thetyped ahead air"), which the answer then goes on
drawing after, into the scrollback for good. :func:`quiet_typing` turns all echo
off for the answer's time and puts the terminal back as it was, however the answer
ends. The keys are not lost: the kernel keeps them for whatever reads next (the
REPL's prompt, or the shell after ``cortan ask``), which draws them at its prompt.
:func:`quiet_control_keys` silences only control keys (``ECHOCTL``), for the REPL as
a whole, where a command ``/run`` starts must still see what it is typed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from types import FrameType


def _terminal_fd(*streams: TextIO | None) -> int | None:
    """The first of ``streams`` (stdin, stdout, stderr) that is a terminal (one device,
    one setting)."""
    for stream in streams or (sys.stdin, sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.isatty():
                return stream.fileno()
        except (ValueError, OSError):  # closed, or replaced by something without a fd
            continue
    return None


@contextlib.contextmanager
def quiet_control_keys() -> Iterator[None]:
    """No ``^C`` echo on the terminal inside the block; nothing done without one."""
    with _local_flags(_terminal_fd(), off=("ECHOCTL",)):
        yield


@contextlib.contextmanager
def quiet_typing() -> Iterator[None]:
    """No echo at all inside the block (an answer streaming): keys typed are kept, not drawn.

    Only when the answer is drawn on the terminal: piped (``cortan ask … | less``), it
    is not, and the pager that shares the terminal sets it itself; what was put back
    at the end was then the pager's setting, leaving the shell without echo after it."""
    with _local_flags(_terminal_fd(sys.stdout), off=("ECHO", "ECHOCTL")):
        yield


@contextlib.contextmanager
def typing_shown(fd: int) -> Iterator[None]:
    """Echo on inside the block: a question asked while an answer streams (the approval
    prompt) is answered on a terminal that :func:`quiet_typing` made silent."""
    with _local_flags(fd, on=("ECHO",)):
        yield


@contextlib.contextmanager
def _local_flags(
    fd: int | None, *, off: tuple[str, ...] = (), on: tuple[str, ...] = ()
) -> Iterator[None]:
    """The terminal's local flags ``off`` cleared and ``on`` set inside the block, put
    back as they were however it ends; nothing done without a terminal."""
    try:
        import termios
    except ImportError:  # not POSIX: no line discipline to change
        fd = None
    if fd is None or not _in_foreground(fd):
        yield
        return
    try:
        saved = termios.tcgetattr(fd)
        changed = [*saved]
        for flag in off:
            changed[3] &= ~getattr(termios, flag)
        for flag in on:
            changed[3] |= getattr(termios, flag)
        if changed != saved:
            termios.tcsetattr(fd, termios.TCSANOW, changed)
    except termios.error:  # not a terminal, or one that refuses: as it was
        changed = saved = []
    if changed == saved:  # nothing to put back, nor to make again after `fg`
        yield
        return
    try:
        with _again_after_fg(fd, changed):
            yield
    finally:
        if _in_foreground(fd):  # sent to the background (Ctrl-Z, bg)
            with contextlib.suppress(termios.error):  # the shell owns the terminal's state
                termios.tcsetattr(fd, termios.TCSANOW, saved)


@contextlib.contextmanager
def _again_after_fg(fd: int, settings: list[Any]) -> Iterator[None]:
    """``settings`` made again when ``fg`` continues a cortan that Ctrl-Z stopped: the
    shell puts its own back at the stop (echo on) and does not restore the job's, so
    keys typed after ``fg`` were drawn into the answer again."""
    import signal
    import termios

    def on_continue(signum: int, frame: FrameType | None) -> None:
        if _in_foreground(fd):  # not after `bg`: the terminal is the shell's then
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSANOW, settings)
        if callable(previous):
            previous(signum, frame)

    try:
        previous = signal.signal(signal.SIGCONT, on_continue)
    except ValueError:  # not the main thread: signals are not ours to take
        yield
        return
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGCONT) is on_continue:
            signal.signal(signal.SIGCONT, signal.SIG_DFL if previous is None else previous)


def _in_foreground(fd: int) -> bool:
    """Whether the terminal is this process's to set: from the background
    (``cortan ask … > out &``) a change stops the process (SIGTTOU, "Stopped (tty
    output)"), where writing the answer to a file would not."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:  # no controlling terminal: it cannot stop us, nor be set
        return False
