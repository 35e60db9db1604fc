"""Running a command: settings, the one-sentence error, the exit code.

Every command body runs inside :func:`guard`, which turns cortan's errors into
one line on stderr and the stable exit codes (0 ok, 1 runtime failure, 2 usage,
130 interrupted, 141 the reader of stdout left), and never shows a traceback
unless ``--debug`` asked for one.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from cortan.core.errors import (
    CortanError,
    OutputClosedError,
    UsageError,
    is_output_failure,
    why_unreadable,
)

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop
    from types import FrameType
    from typing import TextIO

    from rich.console import Console

    from cortan.config.settings import Settings
    from cortan.render.diagnostics import Diagnostics

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_READER_GONE = OutputClosedError.exit_code  # 141: 128 + SIGPIPE, as Unix tools report


@dataclass
class Context:
    """Global options, shared by every command."""

    debug: bool = False
    no_color: bool = False
    _diagnostics: Diagnostics | None = field(default=None, repr=False)

    _warned_exposure: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        from cortan.cli.logging_setup import setup_logging

        # Off unless --debug or CORTAN_LOG_LEVEL; redacted; never a stray traceback.
        setup_logging(self.debug)

    @property
    def color_enabled(self) -> bool:
        return not self.no_color and "NO_COLOR" not in os.environ

    @property
    def diagnostics(self) -> Diagnostics:
        if self._diagnostics is None:
            from cortan.render.diagnostics import Diagnostics

            color = self.color_enabled and sys.stderr.isatty()
            self._diagnostics = Diagnostics(sys.stderr, color=color)
        return self._diagnostics

    def replace_stderr(self, stream: TextIO) -> None:
        """Write to ``stream`` instead of stderr from here on: sys.stderr, the logging
        handlers that wrote to it, and the diagnostics (``cortan serve``'s hand-off)."""
        import logging

        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                handler.setStream(stream)
        sys.stderr = stream
        self._diagnostics = None  # made again, on the new stream

    def console(self, settings: Settings, file: TextIO | None = None) -> Console:
        """A rich console on ``file`` (stdout by default); colour off by setting, flag
        or NO_COLOR. rich is imported here, when something is to be drawn."""
        from rich.console import Console

        color = settings.color and self.color_enabled
        return Console(file=file, no_color=not color, highlight=False)

    def load_settings(self, **flags: Any) -> Settings:
        from cortan.config.load import (
            get_exposure_warning,
            get_misspelt_variables,
            load_settings,
        )
        from cortan.config.paths import get_config_file

        settings = load_settings(**flags)
        if not self._warned_exposure:
            self._warned_exposure = True
            if warning := get_exposure_warning(get_config_file()):
                self.diagnostics.warning(warning)
            for warning in get_misspelt_variables():
                self.diagnostics.warning(warning)
        return settings


def get_context(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Context) else Context()


def check_model_option(model: str | None) -> None:
    """``-m ""`` is a mistake, not a request for the default model."""
    if model is not None and not model.strip():
        raise UsageError("option --model is empty: give provider:model, an alias or a name")


def check_provider(settings: Settings, name: str) -> None:
    """A provider named on the command line must be configured: a usage error (2) if not."""
    if name in settings.providers:
        return
    import difflib

    known = ", ".join(settings.providers)
    close = difflib.get_close_matches(name, list(settings.providers), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"no provider named {name!r} is configured (known: {known}){hint}")


def check_output_path(path: Path) -> None:
    """Refuse ``-o`` naming one of cortan's own files: ``sessions export -o cortan.db``
    emptied the session store, every conversation lost."""
    from cortan.config.paths import get_data_dir
    from cortan.store.db import own_file_at

    own = own_file_at(path, get_data_dir())
    if own is not None:
        raise UsageError(
            f"-o {path} is cortan's own {own.name}, which writing there would destroy: "
            "write the output elsewhere"
        )


def fail(context: Context, message: str, code: int = EXIT_FAILURE) -> NoReturn:
    context.diagnostics.error(message)
    raise typer.Exit(code)


@contextmanager
def guard(context: Context) -> Iterator[None]:
    """Map whatever a command raises to one sentence and an exit code."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except CortanError as exc:
        if context.debug:
            logging.getLogger("cortan").exception("error")
        fail(context, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        _silence_broken_pipe()
    except Exception as exc:
        if context.debug:
            raise
        if is_output_failure(exc):
            fail(context, f"cannot write the output: {why_unreadable(exc)}")
        fail(context, f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")


def _silence_broken_pipe() -> NoReturn:
    # `cortan ask … | head -1`: the reader left. Exit quietly, as Unix tools do.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(EXIT_READER_GONE)


def run_async(
    main: Callable[[], Any],
    *,
    hangups: bool = False,
    loop_factory: Callable[[], AbstractEventLoop] | None = None,
) -> Any:
    """asyncio.run, with Ctrl-C surfacing as KeyboardInterrupt after cleanup.

    With ``hangups``, SIGTERM and SIGHUP stop the work as Ctrl-C does: the running
    task is cancelled, so the answer ends interrupted with its partial kept and
    stored, and then the command exits 128 + the signal (143, 129), as a process
    killed by it would report (issue 15; the exit codes of docs/scripting.md). ``loop_factory``:
    another event loop (the gateway's uvloop).
    """
    import asyncio

    received: list[int] = []
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(
            _safe_second_ctrl_c(_with_hangups(main, received) if hangups else main())
        )
    if received:
        raise typer.Exit(128 + received[0])
    return result


async def _safe_second_ctrl_c(work: Awaitable[Any]) -> Any:
    """``work``, with a second Ctrl-C that cancels the work again instead of raising.

    asyncio.Runner cancels the task on the first Ctrl-C and raises KeyboardInterrupt
    from its signal handler on the second, in whatever Python code runs then. In a
    ``__del__`` (aiohttp's sessions have one, and a clean stop frees many) Python
    cannot raise it: it printed "Exception ignored" and a traceback, and the second
    Ctrl-C was lost. Here the second cancels the task once more, at its next await
    (the clean stop the first began is cut short), and the Runner, which counted the
    first, turns that cancellation into the same KeyboardInterrupt.
    """
    import asyncio
    import signal

    runners = signal.getsignal(signal.SIGINT)  # the Runner's, when it installed one
    task = asyncio.current_task()
    if not callable(runners) or runners is signal.default_int_handler or task is None:
        return await work  # not the main thread, or Ctrl-C handled elsewhere
    loop = asyncio.get_running_loop()
    seen = 0
    again = 0  # the cancellations of the later Ctrl-Cs that took

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal seen
        seen += 1
        if seen == 1:
            runners(signum, frame)  # counted and the task cancelled, as asyncio does
        else:
            loop.call_soon_threadsafe(cancel_again)

    def cancel_again() -> None:
        nonlocal again
        again += task.cancel()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        return await work
    except asyncio.CancelledError:
        # The Runner makes the cancellation KeyboardInterrupt only when no other is
        # pending: the later Ctrl-Cs' own, left, escaped as CancelledError and a traceback.
        for _ in range(again):
            task.uncancel()
        raise
    finally:
        if seen:  # the work is stopping for good: later Ctrl-Cs wait for it, quietly
            signal.signal(signal.SIGINT, _while_stopping)
        elif signal.getsignal(signal.SIGINT) is on_sigint:  # the REPL may have replaced it
            signal.signal(signal.SIGINT, runners)


def _while_stopping(signum: int, frame: FrameType | None) -> None:
    """A Ctrl-C once the work has stopped on one: nothing is left to cut short.

    Raised, it landed in whatever ran as the process ended, the Runner closing or
    the interpreter joining threads and freeing objects, and printed "Exception
    ignored" with a traceback. Ignoring it with SIG_IGN instead would pass the
    ignoring on to any program started later.
    """


async def _with_hangups(main: Callable[[], Any], received: list[int]) -> Any:
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    signals = (signal.SIGTERM, signal.SIGHUP)

    def stop(signum: int) -> None:
        from cortan.core.stops import cancel_message

        received.append(signum)
        task.cancel(cancel_message(signum))  # a command running is handed the same signal

    for signum in signals:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await main()
    except asyncio.CancelledError:
        if not received:
            raise  # Ctrl-C: asyncio.run makes it KeyboardInterrupt
        return None  # stopped before an answer began: nothing to end
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
