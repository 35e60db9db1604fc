"""Which signal stopped the work, carried on the running task's cancellation.

Layer: core. ``cli/runner.py`` turns SIGTERM and SIGHUP into a cancellation of the
task it runs (so answers end interrupted, their partial kept); what runs below it and
holds a process of its own (command mode's command) passes the same signal on to it,
so it must be able to tell which one came: a command may trap SIGHUP and SIGTERM
differently, as ``nohup`` does.
"""

from __future__ import annotations

_PREFIX = "stopped by signal "


def cancel_message(signum: int) -> str:
    """The message to cancel a task with when ``signum`` stops the work."""
    return f"{_PREFIX}{signum}"


def stopping_signal(cancelled: BaseException) -> int | None:
    """The signal a cancellation made by :func:`cancel_message` names; None for others."""
    for arg in cancelled.args:
        if isinstance(arg, str) and arg.startswith(_PREFIX) and arg[len(_PREFIX) :].isdigit():
            return int(arg[len(_PREFIX) :])
    return None
