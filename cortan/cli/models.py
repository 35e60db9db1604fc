"""``cortan models``: every configured provider's models, in a table or as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.runner import fail, get_context, guard, run_async

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.errors import CortanError
    from cortan.providers.base import ModelInfo


def models(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Only this provider.")
    ] = None,
) -> None:
    """List the models of every configured provider."""
    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        names = [provider] if provider else list(settings.providers)
        results = run_async(lambda: gather_models(settings, names))
        found: list[ModelInfo] = []
        for name, result in results.items():
            if isinstance(result, list):
                found.extend(result)
            else:
                context.diagnostics.warning(f"{name}: {result}")
        if not any(isinstance(r, list) for r in results.values()):
            fail(context, "no provider answered; `cortan config show` lists them")
        if json_output:
            sys.stdout.write(json.dumps([_as_dict(m) for m in found], indent=2) + "\n")
        else:
            _print_table(found, context.color_enabled)


async def gather_models(
    settings: Settings, names: list[str]
) -> dict[str, list[ModelInfo] | CortanError]:
    """Ask every named provider at once; a failure is kept as that provider's result."""
    from cortan.app import App
    from cortan.errors import CortanError, UsageError

    app = App.build(settings)

    async def one(name: str) -> list[ModelInfo] | CortanError:
        if name not in settings.providers:
            return UsageError(f"no provider named {name!r} is configured")
        try:
            return await app.manager.list_models(name)
        except CortanError as exc:
            return exc

    try:
        results = await asyncio.gather(*(one(name) for name in names))
    finally:
        await app.aclose()
    return dict(zip(names, results, strict=True))


def _as_dict(model: ModelInfo) -> dict[str, object]:
    return {
        "name": model.name,
        "provider": model.provider,
        "family": model.family,
        "parameter_size": model.parameter_size,
        "size": model.size,
    }


def _print_table(found: list[ModelInfo], color: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from cortan.render.sanitize import sanitize

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "provider", "family", "parameters", "size"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for m in found:
        size = f"{m.size / 1e9:.1f} GB" if m.size else ""
        cells = (m.name, m.provider, m.family or "", m.parameter_size or "", size)
        table.add_row(*(sanitize(c) for c in cells))
    Console(no_color=not color, highlight=False).print(table)
