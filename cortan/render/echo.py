"""Keeping the terminal from echoing control keys into an answer as it streams.

Layer: render. While an answer streams, the terminal is in cooked mode (the line
editor is not reading), so the kernel echoes Ctrl-C as ``^C`` wherever the cursor
stands: in the middle of the answer ("and a^C lon"), which then goes on drawing
after it. :func:`quiet_control_keys` turns that echo off for the answer's time
and puts the terminal back as it was, however the answer ends. Typed letters
still echo: only control keys (``ECHOCTL``) are made silent.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


def _terminal_fd() -> int | None:
    """The first of stdin, stdout, stderr that is a terminal (one device, one setting)."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.isatty():
                return stream.fileno()
        except (ValueError, OSError):  # closed, or replaced by something without a fd
            continue
    return None


@contextlib.contextmanager
def quiet_control_keys() -> Iterator[None]:
    """No ``^C`` echo on the terminal inside the block; nothing done without one."""
    fd = _terminal_fd()
    try:
        import termios
    except ImportError:  # not POSIX: no line discipline to quiet
        fd = None
    if fd is None:
        yield
        return
    try:
        saved = termios.tcgetattr(fd)
        quiet = [*saved]
        quiet[3] = saved[3] & ~termios.ECHOCTL
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except termios.error:  # a terminal that refuses: echoed as before
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)
