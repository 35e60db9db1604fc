"""The command line. Layer: cli (Typer), thin: parse, call below, map to exit codes.

``main`` answers ``--version`` before importing Typer, so the commonest probe of
an installed tool costs about as much as starting Python. Every other command
starts with the garbage collector paused (:mod:`cortan.core.startup`). When a command
is done it leaves through :func:`exit_now`, skipping the interpreter's teardown.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``cortan`` command."""
    if sys.stdout is None or sys.stderr is None:
        _closed_streams()  # `cortan ask hi >&-`: one sentence, not a traceback (issue 15)
    if sys.argv[1:] in (["--version"], ["-V"]):
        _print_version()
        return
    from cortan.core.startup import pause_collector

    pause_collector()
    # What stdout's encoding cannot take (PYTHONIOENCODING=ascii, a latin-1 locale) is
    # shown replaced, never dropped with the rest of the answer (issue 15).
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    from cortan.cli.main import run

    try:
        run()
    except SystemExit as exc:
        if isinstance(exc.code, int | None):
            code = exc.code or 0
            if code == 1 and isinstance(exc.__context__, BrokenPipeError):
                code = _reader_gone_code()  # Click's (help) and Rich's (tables) exit 1 for it
            if not _flush_stdout():  # `cortan roles | true`: what was left in the buffer
                code = code or _reader_gone_code()
            exit_now(code)
            raise SystemExit(code) from None
        raise
    except OSError as exc:  # Click writing --help or a usage message to a full disk
        _output_failed(exc)


def _print_version() -> None:
    from cortan import __version__

    try:
        sys.stdout.write(f"cortan {__version__}\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `cortan -V | true`
        _silence_stdout()
        raise SystemExit(_reader_gone_code()) from None
    except OSError as exc:
        _output_failed(exc)


def _output_failed(exc: OSError) -> None:
    """stdout refused what was printed outside a command's guard: one sentence, exit 1."""
    from cortan.core.errors import is_output_failure, why_unreadable

    if not is_output_failure(exc):
        raise exc
    _silence_stdout()  # what is still buffered would fail again at exit
    sys.stderr.write(f"cortan: error: cannot write the output: {why_unreadable(exc)}\n")
    sys.stderr.flush()
    raise SystemExit(1) from None


def _flush_stdout() -> bool:
    """Flush stdout; False when its reader went away (``| head``, ``| true``).

    The answer or listing was written to the buffer whole and only the last flush
    meets the closed pipe: without this, the interpreter's own flush at exit says
    "Exception ignored … BrokenPipeError" and exits 120. stdout then points at
    /dev/null, so that no later flush fails again.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return False
    except (OSError, ValueError):
        pass  # another failure (a full disk, a closed stream): exit_now leaves it to Python
    return True


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _reader_gone_code() -> int:
    from cortan.core.errors import OutputClosedError

    return OutputClosedError.exit_code  # 141, as docs/scripting.md's table says


def _closed_streams() -> None:
    """stdout or stderr was closed before cortan started: say so where it can, and stop.

    With stdout closed there is nowhere to put an answer, so nothing is sent; a closed
    stderr is pointed at /dev/null so that the rest of the run has one to write to.
    """
    import os

    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        sys.stderr.write("cortan: error: stdout is closed, so there is nowhere to write to\n")
        sys.stderr.flush()
        raise SystemExit(1)


def exit_now(code: int) -> None:
    """Exit without tearing the interpreter down, once nothing is left to finish.

    Freeing every module of the SDKs takes 40-150 ms after the answer is shown
    (issue 7: exit within 30 ms of the last byte). ``atexit`` handlers (logging,
    coverage) still run and the standard streams are flushed. When another
    non-daemon thread is alive, a tracer or profiler is installed, or a flush
    fails (a closed pipe), this returns and the normal exit takes over, with its
    usual waiting, reports and error handling.
    """
    import atexit
    import os
    import threading

    if sys.gettrace() is not None or sys.getprofile() is not None:
        return  # a debugger or profiler (cProfile writes its report at teardown)
    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return
    try:
        _flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()  # runs each handler once, then forgets it
    try:
        _flush()
    finally:
        os._exit(code)


def _flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
