"""``cortan tools``: the tools a model may be offered, built-in and from MCP servers.

Layer: cli (thin). Each configured MCP server is started to list its tools, and
stopped before the command ends; one that cannot start is one sentence on stderr
(the others are still listed) and the exit code is 1. docs/tools.md explains them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.runner import EXIT_FAILURE, get_context, guard, run_async

if TYPE_CHECKING:
    from cortan.config.settings import Settings


def tools(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the tools a model may call (with --tools): built-ins, then MCP servers'."""
    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        failures: list[str] = []
        notes: list[str] = []
        listed = run_async(lambda: _list(settings, failures, notes))
        for note in notes:
            context.diagnostics.warning(note)
        for failure in failures:
            context.diagnostics.error(failure)
        _print(listed, settings, json_output, context.color_enabled)
        if failures:
            raise typer.Exit(EXIT_FAILURE)


async def _list(
    settings: Settings, failures: list[str], notes: list[str]
) -> list[tuple[str, str, str]]:
    """(name, where from, description) of every tool; servers that fail go to ``failures``,
    what a server's listing left out (bad names, a cut list) to ``notes``."""
    from cortan.engine.tools.toolbox import Toolbox

    toolbox = Toolbox.from_settings(settings)

    async def failed(text: str) -> None:
        failures.append(text)

    async def noted(text: str) -> None:
        notes.append(text)

    try:
        found = await toolbox.list_tools(failed, noted)
    finally:
        await toolbox.aclose()
    builtins = {tool.name for tool in toolbox.builtins}
    return [
        (tool.name, "built-in" if tool.name in builtins else "mcp", tool.description)
        for tool in found
    ]


def _print(
    listed: list[tuple[str, str, str]], settings: Settings, json_output: bool, color: bool
) -> None:
    from cortan.core.text import make_visible, shorten
    from cortan.render.report import dump_json

    if json_output:
        rows = [{"name": n, "from": f, "description": d} for n, f, d in listed]
        data = {"enabled": settings.tools.enabled, "tools": rows}
        sys.stdout.write(dump_json(data, indent=2) + "\n")
        return
    from cortan.cli.tables import print_rows

    lines: list[tuple[str, ...]] = []
    for name, where, description in listed:
        first = make_visible(description.strip().splitlines()[0] if description.strip() else "")
        lines.append((make_visible(name), where, shorten(first, 120)))
    print_rows(("name", "from", "what it does"), lines, color)
