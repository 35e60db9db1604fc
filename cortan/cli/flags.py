"""The global flags (``--debug``, ``--no-color``), wherever on the line they are typed.

Layer: cli. Click reads a group's options only before its command, so ``cortan ask
--debug`` failed with "No such option" (issue 21). :class:`CortanGroup` moves each
global flag found after the command in front of it before Click parses the line,
walking the command's own options so that a value is never taken for a flag: in
``ask -s --debug`` the system prompt is ``--debug``, and after ``--`` everything is
an argument. A command with an option of the same name keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Context  # Typer's own copy of click (no click installed)

GLOBAL_FLAGS = ("--debug", "--no-color")


class CortanGroup(TyperGroup):
    """The root group: global flags typed after the command count as typed before it."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(self, ctx, args))


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
            takes_value, own = _options(command)
    return [*hoisted, *kept]


def _options(command: Any) -> tuple[set[str], set[str]]:
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
