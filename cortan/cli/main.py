"""The Typer application: global options and the command groups, one module each.

Help is plain (no Rich formatting) so that ``cortan --help`` stays fast; every
command module imports what it needs inside the command, not at import time.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cortan import __version__
from cortan.cli import ask, chat, config, doctor, keys, logs, models, roles, sessions
from cortan.cli.runner import Context

app = typer.Typer(
    name="cortan",
    help="A terminal AI shell for Ollama and OpenAI-compatible models.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cortan {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on stderr.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour or styles (NO_COLOR is honoured too).")
    ] = False,
) -> None:
    """Chat with a model. With no command: the interactive shell on a terminal, else `ask`."""
    ctx.obj = Context(debug=debug, no_color=no_color)
    if ctx.invoked_subcommand is None:
        if sys.stdout.isatty():
            chat.open_shell(ctx.obj)
        else:  # `echo question | cortan > answer.txt`: a one-shot ask, as scripts expect
            ctx.invoke(ask.ask, ctx=ctx)


app.command("ask")(ask.ask)
app.command("chat")(chat.chat)
app.command("models")(models.models)
app.command("roles")(roles.roles)
app.add_typer(config.app, name="config")
app.add_typer(keys.app, name="keys")
app.command("doctor")(doctor.doctor)
app.add_typer(sessions.app, name="sessions")
app.command("logs")(logs.logs)


def run() -> None:
    app()
