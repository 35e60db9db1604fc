"""``cortan chat`` and bare ``cortan``: the interactive shell (see cortan/shell).

Piped input starts the conversation (``cat f | cortan chat``); the keyboard is
then read from the terminal itself (/dev/tty), so the pipe and the shell both work.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from cortan.cli.runner import Context, get_context, guard, run_async
from cortan.errors import UsageError

if TYPE_CHECKING:
    from cortan.config.settings import Settings


def chat(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="provider:model, alias or bare name.")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Keep no input history for this shell.")
    ] = False,
    vi: Annotated[bool, typer.Option("--vi", help="vi keys instead of Emacs keys.")] = False,
) -> None:
    """Open the interactive chat shell. Piped text starts the conversation."""
    open_shell(get_context(ctx), model=model, system=system, no_history=no_history, vi=vi)


def open_shell(
    context: Context,
    *,
    model: str | None = None,
    system: str | None = None,
    no_history: bool = False,
    vi: bool = False,
) -> None:
    with guard(context):
        settings = context.load_settings()
        piped = _read_piped(settings)
        terminal = _open_terminal()
        try:
            run_async(
                lambda: _run(settings, context, terminal, piped, model, system, no_history, vi)
            )
        finally:
            if terminal is not sys.stdin:
                terminal.close()


def _read_piped(settings: Settings) -> str | None:
    if sys.stdin.isatty():
        return None
    from cortan.cli.stdin import get_stdin, read_stdin
    from cortan.engine.validator import decode_text

    data = read_stdin(get_stdin(), max_bytes=settings.max_input_bytes, timeout=None).data
    return decode_text(data, "stdin") if data and data.strip() else None


def _open_terminal() -> TextIO:
    if sys.stdin.isatty():
        return sys.stdin
    try:
        return open("/dev/tty", encoding="utf-8")
    except OSError:
        raise UsageError(
            "the interactive shell needs a terminal; for scripts use `cortan ask`"
        ) from None


async def _run(
    settings: Settings,
    context: Context,
    terminal: TextIO,
    piped: str | None,
    model: str | None,
    system: str | None,
    no_history: bool,
    vi: bool,
) -> None:
    from prompt_toolkit.input import create_input

    from cortan.app import App, make_repl
    from cortan.cli.ask import make_console
    from cortan.config.paths import get_data_dir

    if not sys.stdout.isatty():
        raise UsageError("the interactive shell needs stdout on a terminal; use `cortan ask`")
    app = App.build(settings)
    history = None if no_history else get_data_dir() / "history"
    repl = make_repl(
        app,
        make_console(settings, context),
        history_path=history,
        vi_mode=vi,
        input=create_input(terminal),
    )
    repl.conversation.model, repl.conversation.system = model, system
    try:
        await repl.run(first_input=piped)
    finally:
        await app.aclose()
