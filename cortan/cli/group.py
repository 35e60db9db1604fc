"""The root command group: global flags anywhere, and usage errors in one sentence.

Layer: cli. Two things Click does its own way, made cortan's (issue 21):

* **Global flags after the command.** Click reads a group's options only before
  its command, so ``cortan ask --debug`` failed with "No such option".
  :class:`CortanGroup` moves each global flag (``--debug``, ``--no-color``) found
  after the command in front of it before Click parses the line, walking the
  command's own options so that a value is never taken for a flag: in ``ask -s
  --debug`` the system prompt is ``--debug``, and after ``--`` everything is an
  argument. A command with an option of the same name keeps it.
* **Usage errors.** Click prints its usage line, a "Try" line and ``Error: …``;
  cortan's errors are one ``cortan: error:`` sentence naming what to do (exit 2).
* **Help in words.** Typer labels each argument with its Python type (``NAME <str>``,
  ``PROMPT... <list[str]>``) and a required one as ``{NAME}`` in the usage line; an
  option without a metavar gets ``<str>`` too. Help shows what the value is instead,
  as Click and the peers' help do: ``NAME``, ``[NAME]``, ``--host ADDRESS``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer._click import Context  # Typer's own copy of click (no click installed)

GLOBAL_FLAGS = ("--debug", "--no-color")


class CortanGroup(TyperGroup):
    """The root group: global flags typed after the command count as typed before it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        say_values_in_words(self)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(self, ctx, args))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> NoReturn:
        """Run, and leave with the exit code; Click's own errors become one sentence."""
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # Click's usage errors: a flag, a value, a name
            usage_error(exc, self.typed_command(sys.argv[1:] if args is None else list(args)))
        except typer.Abort:  # end of input at one of Click's own prompts
            say_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def typed_command(self, args: list[str]) -> str:
        """The command the words name, as typed (``cortan sessions rename``), for an error
        that does not say which command it came from."""
        path = ["cortan"]
        command: Any = self
        for arg in args:
            if arg.startswith("-"):
                continue
            command = getattr(command, "commands", {}).get(arg)
            if command is None:
                break
            path.append(arg)
        return " ".join(path)


class DefaultCommandGroup(TyperGroup):
    """A group that runs :attr:`default_command` when no command is named, with the
    options typed after the group's name: ``cortan sessions -n 5`` is ``cortan sessions
    list -n 5`` and ``cortan config --json`` is ``config show --json``, as ``cortan logs
    -n 5`` and ``cortan models --json`` take theirs (issue 21's newcomer again). The
    group's own ``--help`` stays its own.
    """

    default_command = ""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0].startswith("-") and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def runs_by_default(command: str) -> type[DefaultCommandGroup]:
    """The group class for a ``typer.Typer(cls=...)`` whose bare name runs ``command``."""

    class Group(DefaultCommandGroup):
        default_command = command

    return Group


class _WordedArgument(TyperArgument):
    """An argument as Click shows one: ``NAME``, ``[NAME]``, ``NAME...``, with no type."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"


def say_values_in_words(command: Any) -> None:
    """Make the help of ``command`` and every command under it name values in words.

    Typer builds its parameter objects itself, so each argument becomes the subclass
    above in place (it adds no state), and a parameter left without a metavar is named
    after itself (``model`` is ``MODEL``, ``--host`` takes ``HOST``) rather than its type.
    """
    for param in getattr(command, "params", ()):
        if type(param) is TyperArgument:
            param.__class__ = _WordedArgument
            if param.metavar is None and param.name:  # Click's default: the name in capitals
                param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
        elif isinstance(param, TyperOption) and param.metavar is None and not param.is_flag:
            longest = max(param.opts, key=len).lstrip("-")
            param.metavar = longest.replace("-", "_").upper()
    for sub in getattr(command, "commands", {}).values():
        say_values_in_words(sub)


def usage_error(exc: typer.TyperException, typed: str = "cortan") -> NoReturn:
    """Click's error as cortan's one sentence, with where the help is (the command of the
    error's context, else the one typed: Typer's parser leaves some errors without one)."""
    ctx = getattr(exc, "ctx", None)
    if (worded := value_in_words(exc.__cause__)) is not None and hasattr(exc, "message"):
        exc.message = worded
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        sys.stderr.write(ctx.get_help() + "\n")  # `cortan sessions`: its help is the answer
        sys.exit(exc.exit_code)
    message = " ".join(exc.format_message().split()).rstrip(".")
    command = getattr(ctx, "command_path", "") or typed
    say_error(f"{message[:1].lower()}{message[1:]} (`{command} --help` says what it takes)")
    sys.exit(exc.exit_code)


def value_in_words(cause: BaseException | None) -> str | None:
    """The first complaint of a pydantic validation error, as a phrase; None if not one."""
    errors = getattr(cause, "errors", None)
    if type(cause).__name__ != "ValidationError" or not callable(errors):
        return None
    from cortan.config.wording import say_what_is_wrong

    return say_what_is_wrong(errors()[0])


def say_error(message: str) -> None:
    from cortan.render.diagnostics import Diagnostics

    color = sys.stderr.isatty() and "NO_COLOR" not in os.environ and "--no-color" not in sys.argv
    Diagnostics(sys.stderr, color=color).error(message)


def hoist_global_flags(group: TyperGroup, ctx: Context, args: list[str]) -> list[str]:
    """``args`` with the global flags that follow the command moved to the front."""
    start = next((i for i, arg in enumerate(args) if not arg.startswith("-")), len(args))
    hoisted: list[str] = []
    kept = args[:start]
    command: Any = group
    takes_value: set[str] = set()
    own: set[str] = set()
    words = iter(args[start:])
    for arg in words:
        if arg == "--":  # the rest are arguments, whatever they look like
            kept += [arg, *words]
            break
        if arg in GLOBAL_FLAGS and arg not in own:
            hoisted.append(arg)
            continue
        kept.append(arg)
        if arg in takes_value:  # `-s VALUE`: the next word is the value, not a flag
            value = next(words, None)
            if value is not None:
                kept.append(value)
        elif not arg.startswith("-") and isinstance(command, TyperGroup):
            command = command.get_command(ctx, arg)  # a group's next word names its command
            takes_value, own = options_of(command)
    return [*hoisted, *kept]


def options_of(command: Any) -> tuple[set[str], set[str]]:
    """The option names of ``command`` that take a value, and all of its option names."""
    takes_value: set[str] = set()
    names: set[str] = set()
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "option":
            continue
        spelt = {*param.opts, *getattr(param, "secondary_opts", ())}
        names |= spelt
        if not (getattr(param, "is_flag", False) or getattr(param, "count", False)):
            takes_value |= set(param.opts)
    return takes_value, names
