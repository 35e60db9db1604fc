"""``cortan cmd``: words in, one shell command out, run only with the user's yes.

Layer: cli (thin). On a terminal (stdin a terminal, and stderr or ``/dev/tty`` one to
talk on) the dialogue of :mod:`cortan.command.mode` runs; without one (pipes, cron,
CI) the command is printed on stdout and never run, unless ``--yes`` and the
``[approval]`` allowlist allow it. ``--print`` only prints, terminal or not: what
``cortan shell-init``'s key bindings call. docs/commands.md describes it all.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from cortan.cli.options import ModelOption, NoLogOption
from cortan.cli.runner import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Context,
    check_model_option,
    get_context,
    guard,
    run_async,
)

if TYPE_CHECKING:
    from typing import TextIO

    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from cortan.cli.continuation import Continuation
    from cortan.command.mode import Outcome, Unattended
    from cortan.config.settings import Settings
    from cortan.render.views import AnswerView

#: Nothing ran: aborted at the prompt, refused by a rule, or unattended and not allowed.
EXIT_NOT_RUN = 5


class Choices(NamedTuple):
    """The options of one ``cortan cmd``."""

    model: str | None
    yes: bool
    print_only: bool
    shell: str | None


class Tty(NamedTuple):
    """The terminal the dialogue happens on, apart from stdout."""

    input: Input
    output: Output
    opened: TextIO | None  # /dev/tty, opened here and closed after


def cmd(
    ctx: typer.Context,
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="WORDS...",
            help="What the command should do, in words (several words are joined).",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Run without asking what [approval] allows (allow_commands, or a grant on a "
            "terminal). Everything else is still asked about, or, with no terminal, not run.",
        ),
    ] = False,
    print_only: Annotated[
        bool,
        typer.Option(
            "--print", "-p", help="Print the command on stdout and nothing else; never run it."
        ),
    ] = False,
    no_log: NoLogOption = False,
    shell: Annotated[
        str | None,
        typer.Option(
            "--shell",
            metavar="NAME",
            help=(
                "The shell to write for and run in (bash, zsh, fish, sh, dash, ksh);"
                " default: $SHELL."
            ),
        ),
    ] = None,
) -> None:
    """Turn words into one shell command; show it, and run it only if you say yes."""
    from cortan.cli.continuation import plan_continuation
    from cortan.command.environment import KNOWN_SHELLS
    from cortan.core.errors import UsageError

    context = get_context(ctx)
    with guard(context):
        check_model_option(model)
        text = " ".join(words or []).strip()
        if not text:
            raise UsageError("say what the command should do: cortan cmd find the largest files")
        if shell is not None and shell not in KNOWN_SHELLS:
            raise UsageError(f"--shell is one of {', '.join(KNOWN_SHELLS)}, not {shell!r}")
        if yes and print_only:
            raise UsageError("--print never runs the command and --yes runs it: give one")
        settings = context.load_settings()
        plan = plan_continuation(settings, continue_last=False, session=None, no_log=no_log)
        ctx.call_on_close(plan.close)
        tty = None if print_only else _open_tty()
        try:
            # SIGTERM or SIGHUP (the terminal closed) at the question: nothing runs, the
            # terminal is given back as it was, the refusal is logged; exit 143 or 129.
            code = run_async(
                lambda: _run(
                    settings, context, plan, tty, text, Choices(model, yes, print_only, shell)
                ),
                hangups=True,
            )
        finally:
            if tty is not None and tty.opened is not None:
                tty.opened.close()
        raise typer.Exit(code)


def _open_tty() -> Tty | None:
    """A terminal to ask on: stdin must be one, and stderr or /dev/tty to write on."""
    if not sys.stdin.isatty():
        return None
    from prompt_toolkit.input import create_input
    from prompt_toolkit.output import create_output

    opened = None
    if sys.stderr.isatty():
        file: TextIO = sys.stderr
    else:
        try:
            opened = file = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 (closed by cmd)
        except OSError:
            return None
    return Tty(create_input(sys.stdin), create_output(stdout=file), opened)


async def _run(
    settings: Settings,
    context: Context,
    plan: Continuation,
    tty: Tty | None,
    text: str,
    choices: Choices,
) -> int:
    from cortan.app import App, make_command_mode, make_gate
    from cortan.command.dialogue import Terminal
    from cortan.config.paths import get_data_dir

    app = App.build(settings)
    plan.attach(app)
    app.attach_notices(lambda note: context.diagnostics.notice(f"cortan: {note}"))
    app.gate = gate = make_gate(settings, get_data_dir())
    if (shown_on := _wait_shown_on(tty, choices)) is not None:
        app.attach_view(_wait_view(settings, context, shown_on))
    try:
        terminal = None
        if tty is not None:
            terminal = Terminal(tty.input, tty.output, color=context.color_enabled)
        mode = make_command_mode(
            app, gate, terminal, model=choices.model, standing_runs=choices.yes, shell=choices.shell
        )
        if terminal is not None:
            return _exit_code(await mode.run(text))
        done = await mode.unattended(text, run=choices.yes)
        return _report_unattended(context, done, choices.print_only)
    finally:
        await app.aclose()


def _wait_shown_on(tty: Tty | None, choices: Choices) -> TextIO | None:
    """Where the wait is drawn: the dialogue's terminal, or stderr when it is one. Not
    with ``--print``: shell key bindings call it, and bash's leaves stderr on the line
    being edited."""
    if tty is not None and tty.opened is not None:
        return tty.opened
    if choices.print_only or not sys.stderr.isatty():
        return None
    return sys.stderr


def _wait_view(settings: Settings, context: Context, file: TextIO) -> AnswerView:
    """The spinner and the model's reasoning, folded, on the terminal the dialogue uses:
    without them a thinking model left "asking the model for a command…" alone on the
    screen for as long as it thought. The answer itself is the dialogue's to show."""
    from cortan.render.terminal import MarkdownView, WaitOnly

    console = context.console(settings, file)
    view = MarkdownView(
        console, code_theme=settings.code_theme, fold=True, tail=settings.show_thinking
    )
    return WaitOnly(view)


def _exit_code(outcome: Outcome) -> int:
    if outcome.ending == "ran" and outcome.status is not None:
        return outcome.status
    if outcome.ending == "interrupted":
        return EXIT_INTERRUPTED
    if outcome.ending == "copied":
        return EXIT_OK
    return EXIT_NOT_RUN


def _report_unattended(context: Context, done: Unattended, quiet: bool) -> int:
    """stdout: the command, when it is only printed; stderr: what cortan says of it
    (``quiet``, for ``--print``: its risks, not its explanation).

    What is printed is the command as reviewed: a character nobody could see is
    printed as its visible stand-in (``<U+200B>``), so a pasted command hides nothing.
    """
    from cortan.core.text import make_visible

    review = done.review
    if done.verdict is not None and not done.verdict.allowed:
        context.diagnostics.error(done.verdict.reason)
        return EXIT_NOT_RUN
    if done.status is not None:
        return done.status
    if not quiet and done.proposal.explanation:
        context.diagnostics.notice(f"# {make_visible(done.proposal.explanation)}")
    # Said with --print too: the key bindings put the command in the line editor, where
    # Enter is the only yes left, and a lookalike letter or a long blank run does not show.
    for risk in review.risks:
        context.diagnostics.warning(f"risky: {risk}")
    sys.stdout.write(review.shown + "\n")
    sys.stdout.flush()
    return EXIT_OK
