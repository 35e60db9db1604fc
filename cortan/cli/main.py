"""The Typer application: global options and the command groups, one module each.

Help is plain (no Rich formatting) so that ``cortan --help`` stays fast; every
command module imports what it needs inside the command, not at import time.
Only the command named on the command line is registered (and its module
imported): Typer builds a click command, with every parameter's type, for each
registered command on every run, and ``cortan ask`` has no use for the other
eight (issue 7: about 10 ms). Help or an unknown name register them all, so
listings and "did you mean" suggestions are unchanged.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer

from cortan import __version__
from cortan.cli.group import GLOBAL_FLAGS, CortanGroup, options_of
from cortan.cli.runner import EXIT_USAGE, Context

#: command name -> (module, attribute, whether it is a sub-app of several commands)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "ask": ("cortan.cli.ask", "ask", False),
    "chat": ("cortan.cli.chat", "chat", False),
    "models": ("cortan.cli.models", "app", True),
    "roles": ("cortan.cli.roles", "roles", False),
    "config": ("cortan.cli.config", "app", True),
    "keys": ("cortan.cli.keys", "app", True),
    "doctor": ("cortan.cli.doctor", "doctor", False),
    "sessions": ("cortan.cli.sessions", "app", True),
    "logs": ("cortan.cli.logs", "app", True),
    "serve": ("cortan.cli.serve", "serve", False),
    "batch": ("cortan.cli.batch", "batch", False),
    "cache": ("cortan.cli.cache", "app", True),
    "grants": ("cortan.cli.grants", "app", True),
    "cmd": ("cortan.cli.cmd", "cmd", False),
    "shell-init": ("cortan.cli.shell_init", "shell_init", False),
    "completion": ("cortan.cli.completion", "completion", False),
    "tools": ("cortan.cli.tools", "tools", False),
}
HELP_FLAGS = ("-h", "--help")

app = typer.Typer(
    cls=CortanGroup,  # --debug and --no-color after the command too
    name="cortan",
    help=(
        "A terminal AI shell for Ollama and OpenAI-compatible models.\n\n"
        # \b: Click keeps these lines as written (one use each, like `git --help`).
        "\b\n"
        "  cortan                      open the chat shell (no terminal: ask what is piped)\n"
        '  cortan "QUESTION"           ask it, as cortan ask "QUESTION" does\n'
        "  cortan -m MODEL [QUESTION]  ask it, or chat, with that model"
    ),
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    add_completion=False,
    context_settings={"help_option_names": list(HELP_FLAGS)},
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
            from cortan.cli.chat import open_shell

            open_shell(ctx.obj)
        else:  # `echo question | cortan > answer.txt`: a one-shot ask, as scripts expect
            from cortan.cli.ask import ask

            ctx.invoke(ask, ctx=ctx)


def commands_needed(argv: Sequence[str]) -> Iterable[str]:
    """The commands to register for these arguments: the one they run, or all of them.

    The global options are all flags, so the first word that is not an option is
    the command (they may also follow it: :mod:`cortan.cli.group`). All are
    registered when help is asked for before it, or the word is no known command
    (Typer then lists them, or suggests the nearest); none when there is no command
    (the shell or a piped ask, started by ``root``).
    """
    for arg in argv:
        if arg in HELP_FLAGS or arg == "--":
            return COMMANDS
        if not arg.startswith("-"):
            return [arg] if arg in COMMANDS else COMMANDS
    return []


def register(names: Iterable[str]) -> None:
    """Add these commands to the app, importing their modules."""
    for name in names:
        module, attribute, is_group = COMMANDS[name]
        target = getattr(importlib.import_module(module), attribute)
        if is_group:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


def with_default_command(argv: list[str]) -> list[str]:
    """``argv`` with ``ask`` or ``chat`` put in where the user named no command.

    ``cortan "why is the sky blue"`` and ``cortan -m llama3 "hi"`` ask, as ``llm``
    and ``aichat`` do; ``cortan -m llama3`` with nothing to ask opens the shell on a
    terminal (and asks what is piped otherwise). A word that looks like a misspelt
    command (``cortan sesions``) stays a usage error with a suggestion, so that a
    typo is never sent to a model.
    """
    start = next((i for i, arg in enumerate(argv) if arg not in GLOBAL_FLAGS), len(argv))
    rest = argv[start:]
    if not rest or rest[0] in COMMANDS or rest[0] in (*HELP_FLAGS, "--version", "-V"):
        return argv
    if flags := _words_for_flags(rest):
        return [*argv[:start], *flags]
    if rest[0] in TYPER_COMPLETION_FLAGS:
        from cortan.cli.group import say_error

        say_error(
            f"cortan has no {rest[0]}: `cortan completion bash|zsh|fish` prints the script "
            "(`cortan completion --help` says where it goes)"
        )
        raise SystemExit(EXIT_USAGE)
    if not rest[0].startswith("-"):
        if (habit := _ollama_habit(rest)) is not None:
            from cortan.cli.group import say_error

            say_error(habit)
            raise SystemExit(EXIT_USAGE)
        if _misspelt(rest[0]):
            return argv  # Click refuses it and names the command meant
        return [*argv[:start], "ask", *rest]
    takes_value, _ = options_of(_command("ask"))
    words = iter(rest)
    asks = False
    for arg in words:
        if arg == "--" or not arg.startswith("-"):
            asks = True
            break
        if arg in takes_value:
            next(words, None)
    command = "ask" if asks or not sys.stdout.isatty() else "chat"
    return [*argv[:start], command, *rest]


#: Typer's own completion flags, which users of Typer-made tools try first: they were
#: refused as an option of ``ask`` (the default command), with no word of ``completion``.
TYPER_COMPLETION_FLAGS = ("--install-completion", "--show-completion")


def _words_for_flags(words: list[str]) -> list[str] | None:
    """``help [COMMAND]`` and ``version`` as the flags, as git, go and ollama take them:
    ``cortan help`` went to the model as a question, ``cortan version`` was refused as a
    misspelling of ``sessions``. ``help sesions`` is Click's usage error naming the
    command meant, and ``help models pull`` the subcommand's help: both went to the
    model. With other words it is a question (``help me write…``)."""
    if words[0] == "version":
        return _version_words(words[1:])
    if words[0] != "help":
        return None
    if len(words) == 1 or (len(words) == 2 and (words[1] in COMMANDS or _misspelt(words[1]))):
        return [*words[1:], "--help"]
    if len(words) == 3 and words[1] in COMMANDS and COMMANDS[words[1]][2]:
        return [*words[1:], "--help"]  # a group's subcommand, or Click names the one meant
    return None


def _version_words(rest: list[str]) -> list[str]:
    """``cortan version`` is ``--version``; ``version --json`` is for scripts that read
    it (``ollama --version`` and ``docker version --format json`` users try both). Any
    other word was refused as a misspelling of ``sessions``, naming the wrong command."""
    if not rest:
        return ["--version"]
    if rest == ["--json"]:
        import json
        import platform

        typer.echo(json.dumps({"version": __version__, "python": platform.python_version()}))
        raise SystemExit(0)
    from cortan.cli.group import say_error

    say_error(f"`cortan version` takes only --json (got {' '.join(rest)!r})")
    raise SystemExit(EXIT_USAGE)


def _ollama_habit(words: list[str]) -> str | None:
    """``cortan run llama3.2`` and ``cortan pull llama3.2``, as an ollama user types them
    first: sent to the default model as the question "run llama3.2", they got an answer
    about running something. What to type instead; None for anything else."""
    if len(words) != 2 or words[0] not in ("run", "pull") or words[1].startswith("-"):
        return None
    name = words[1]
    if not name or any(c.isspace() for c in name):
        return None
    import shlex

    quoted = shlex.quote(name)
    if words[0] == "pull":
        instead = f"`cortan models pull {quoted}` downloads it"
    else:
        instead = (
            f"`cortan chat -m {quoted}` chats with it, `cortan ask -m {quoted} QUESTION` asks it"
        )
    asked = shlex.quote(" ".join(words))
    return (
        f"cortan has no {words[0]} command: {instead} (to ask it as a question: cortan ask {asked})"
    )


def _misspelt(word: str) -> bool:
    """A word close enough to a command's name to be taken for a misspelling of it."""
    return " " not in word and bool(difflib.get_close_matches(word, COMMANDS, 1, CLOSE))


def _command(name: str) -> Any:
    """The click command Typer makes of command ``name``, made apart from the app."""
    module, attribute, _ = COMMANDS[name]
    probe = typer.Typer()
    probe.command(name)(getattr(importlib.import_module(module), attribute))
    return typer.main.get_command(probe)


#: How alike a word must be to a command's name to be taken for a misspelling of it.
CLOSE = 0.65


def run() -> None:
    argv = sys.argv[1:]
    if "_CORTAN_COMPLETE" in os.environ:  # a shell's Tab (`cortan completion`): all of them
        from cortan.cli.completion import prepare

        prepare()
        register(COMMANDS)
    else:
        argv = with_default_command(argv)
        register(commands_needed(argv))
    app(args=argv)
