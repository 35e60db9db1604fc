"""``cortan chat`` and bare ``cortan``: the interactive shell (see cortan/shell).

Piped input starts the conversation (``cat f | cortan chat``); the keyboard is
then read from the terminal itself (/dev/tty), so the pipe and the shell both work.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, NamedTuple, TextIO

import typer

from cortan.cli.names import complete_role, complete_session
from cortan.cli.options import (
    GenerationOption,
    MaxTokensOption,
    ModelOption,
    NoThinkOption,
    ThinkOption,
)
from cortan.cli.runner import Context, check_model_option, get_context, guard, run_async
from cortan.core.errors import UsageError

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.core.requests import Think
    from cortan.shell.repl import Repl


class ShellOptions(NamedTuple):
    model: str | None = None
    system: str | None = None
    no_history: bool = False
    vi: bool = False
    session: str | None = None
    role: str | None = None
    no_log: bool = False
    continue_last: bool = False
    tools: bool | None = None  # None: as [tools] enabled says
    think: Think = None  # --think: None keeps the configured or the server's default
    generation: dict[str, object] | None = None  # -o, --max-tokens: as /set sets them


def chat(
    ctx: typer.Context,
    model: ModelOption = None,
    system: Annotated[
        str | None, typer.Option("--system", "-s", metavar="TEXT", help="System prompt.")
    ] = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Keep no input history for this shell.")
    ] = False,
    vi: Annotated[bool, typer.Option("--vi", help="vi keys instead of Emacs keys.")] = False,
    session: Annotated[
        str | None,
        typer.Option(
            "--session",
            metavar="NAME",
            help="Open the stored conversation NAME or id, or start NAME.",
            autocompletion=complete_session,
        ),
    ] = None,
    continue_last: Annotated[
        bool,
        typer.Option("--continue", "-c", help="Go on with the conversation used last."),
    ] = False,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            "-r",
            metavar="NAME",
            help="Start with this role.",
            autocompletion=complete_role,
        ),
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Store nothing from this shell.")
    ] = False,
    tools: Annotated[
        bool | None,
        typer.Option(
            "--tools/--no-tools",
            help="Let the model call tools from the start (/tools on|off switches).",
            show_default=False,
        ),
    ] = None,
    think: ThinkOption = None,
    no_think: NoThinkOption = False,
    option: GenerationOption = None,
    max_tokens: MaxTokensOption = None,
) -> None:
    """Open the interactive chat shell. Piped text starts the conversation."""
    from cortan.cli.generation import make_generation

    with guard(get_context(ctx)):
        if continue_last and session is not None:
            raise UsageError("use either -c/--continue or --session NAME, not both")
        generation = make_generation(think, no_think, None, option or [], max_tokens)
    options = ShellOptions(
        model, system, no_history, vi, session, role, no_log, continue_last, tools,
        generation.think, dict(generation.options),
    )  # fmt: skip
    open_shell(get_context(ctx), options)


def open_shell(context: Context, options: ShellOptions | None = None) -> None:
    options = options or ShellOptions()
    with guard(context):
        check_model_option(options.model)
        settings = context.load_settings()
        if options.role is not None:
            from cortan.config.roles import get_role

            get_role(settings, options.role)  # an unknown role fails before anything opens
        piped = _read_piped(settings)
        terminal = _open_terminal()
        try:
            run_async(lambda: _run(settings, context, terminal, piped, options), hangups=True)
        finally:
            if terminal is not sys.stdin:
                terminal.close()


def _read_piped(settings: Settings) -> str | None:
    if sys.stdin.isatty():
        return None
    from cortan.cli.stdin import get_stdin, read_stdin
    from cortan.core.text import decode_text

    data = read_stdin(get_stdin(), max_bytes=settings.max_input_bytes, timeout=None).data
    return decode_text(data, "stdin") if data and data.strip() else None


def _open_terminal() -> TextIO:
    if sys.stdin.isatty():
        return sys.stdin
    try:
        return open("/dev/tty", encoding="utf-8")  # closed by open_shell
    except OSError:
        raise UsageError(
            "the interactive shell needs a terminal; for scripts use `cortan ask`"
        ) from None


async def _run(
    settings: Settings,
    context: Context,
    terminal: TextIO,
    piped: str | None,
    options: ShellOptions,
) -> None:
    from prompt_toolkit.input import create_input

    from cortan.app import App, make_repl
    from cortan.cli.continuation import open_store
    from cortan.config.paths import get_data_dir

    if not sys.stdout.isatty():
        raise UsageError("the interactive shell needs stdout on a terminal; use `cortan ask`")
    store = None if options.no_log or not settings.log else open_store(create=True)
    app = App.build(settings)
    history = None if options.no_history else get_data_dir() / "history"
    try:
        # A refused history (a link, a FIFO) fails here, the store and app still closed.
        repl = make_repl(
            app,
            context.console(settings),
            history_path=history,
            store=store,
            vi_mode=options.vi,
            input=create_input(terminal),
        )
        # Applied first, so the banner names the model in use; what they say follows it.
        await repl.run(first_input=piped, setup=lambda: _apply_options(repl, options))
    finally:
        await app.aclose()
        if store is not None:
            store.close()


async def _apply_options(repl: Repl, options: ShellOptions) -> None:
    """--session or -c first (they bring a model and system prompt), then --role, -m, -s,
    then the generation flags (over a role's temperature, as ``/set`` is)."""
    from cortan.shell.actions import do_role

    if options.session is not None or options.continue_last:
        _open_conversation(repl, options.session)
    if options.role is not None:
        await do_role(repl, options.role)
    if options.model is not None:
        repl.conversation.model = options.model
    if options.system is not None:
        repl.conversation.system = options.system
    if options.tools is not None:
        repl.conversation.tools = options.tools
    if options.think is not None:
        repl.conversation.think = options.think
    if options.generation:
        repl.conversation.set_options.update(options.generation)


def _open_conversation(repl: Repl, session: str | None) -> None:
    """--session NAME (made if new) or, with ``None``, -c's conversation used last."""
    from cortan.shell.sessions import load_session

    store, recorder = repl.services.store, repl.services.recorder
    if store is None or recorder is None:
        flag = "-c" if session is None else "--session"
        raise UsageError(f"{flag} needs the session store, which is off (--no-log)")
    if session is not None:
        load_session(repl, store, recorder, session, create=True)
        return
    last = store.latest()
    if last is None:
        raise UsageError("there is no earlier conversation to continue: chat without -c")
    load_session(repl, store, recorder, f"#{last.id}", create=False)
