"""``cortan roles``: the roles ``--role`` and ``/role`` accept, built-in and configured."""

from __future__ import annotations

import json
import shutil
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.runner import get_context, guard

if TYPE_CHECKING:
    from cortan.config.roles import Role


def roles(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the roles: name, model, and the first line of the system prompt."""
    from cortan.config.roles import get_roles

    context = get_context(ctx)
    with guard(context):
        found = list(get_roles(context.load_settings()).values())
        if json_output:
            sys.stdout.write(json.dumps([_as_dict(r) for r in found], indent=2) + "\n")
        else:
            _print_table(found)


def _as_dict(role: Role) -> dict[str, object]:
    return {
        "name": role.name,
        "model": role.model,
        "temperature": role.temperature,
        "builtin": role.builtin,
        "system": role.system,
    }


def _print_table(found: list[Role]) -> None:
    """Aligned columns, one role a line."""
    from cortan.core.text import make_visible, shorten
    from cortan.render.sanitize import sanitize

    # On a terminal a line is cut at its width; a pipe gets the whole first line.
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 1 << 16
    rows = [("name", "model", "system prompt")]
    rows += [(make_visible(r.name), make_visible(r.model or "(default)"), r.summary) for r in found]
    names = max(len(row[0]) for row in rows)
    models = max(len(row[1]) for row in rows)
    for name, model, summary in rows:
        line = sanitize(f"{name:<{names}}  {model:<{models}}  {summary}")
        sys.stdout.write(shorten(line, width) + "\n")
