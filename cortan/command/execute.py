"""Running an approved command in the user's shell, with the terminal attached.

Layer: command. The command runs as ``$SHELL -c COMMAND`` (/bin/sh when $SHELL is
unset or not runnable) in the current folder, with cortan's stdin, stdout and stderr,
so pagers, editors and password prompts work. While it runs, Ctrl-C belongs to it:
cortan ignores SIGINT, as a shell does for its foreground job, and reports the status
the shell would (128 + the signal for a command a signal stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator


async def run_in_shell(shell_path: str, command: str, *, own_sigint: bool = True) -> int:
    """The exit status of ``command`` run by ``shell_path``.

    ``own_sigint``: hold Ctrl-C while the command runs (``cortan cmd``); the REPL has
    its own handler, which has no answer to cancel then.
    """
    with _sigint_ignored() if own_sigint else contextlib.nullcontext():
        try:
            process = await asyncio.create_subprocess_exec(shell_path, "-c", command)
        except OSError as exc:
            from cortan.core.errors import CortanError

            raise CortanError(f"cannot run {shell_path}: {exc.strerror}") from None
        status = await process.wait()
    return 128 - status if status < 0 else status


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    loop = asyncio.get_running_loop()
    try:
        # A handler, not SIG_IGN: a handled signal is reset to the default in the child.
        loop.add_signal_handler(signal.SIGINT, lambda: None)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
