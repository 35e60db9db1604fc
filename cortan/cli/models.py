"""``cortan models``: every provider's models, and where each alias leads.

``models show NAME`` says what a model's server reports of it; ``models pull NAME``
has an Ollama server download one, with a progress bar.

The first table lists the models the providers report; the second the default
model and every alias, what each resolves to, whether that model was found, and
its fallback chain. ``--json`` prints both as one object (``models``, ``names``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.names import complete_model
from cortan.cli.runner import check_provider, fail, get_context, guard, run_async
from cortan.core.messages import get_cut_listings

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.core.errors import CortanError
    from cortan.core.messages import ModelInfo
    from cortan.engine.catalog import Listing
    from cortan.render.pull import PullView

DEFAULT = "(default)"


@dataclass(frozen=True, slots=True)
class NameRoute:
    """Where a name leads; ``available`` is None when its provider did not answer."""

    name: str
    resolves_to: str | None = None
    available: bool | None = None
    fallback: list[str] = field(default_factory=list)
    error: str | None = None


app = typer.Typer(
    help="List the models of every configured provider, and where each alias leads.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", metavar="NAME", help="Only this provider.")
    ] = None,
) -> None:
    """List the models of every configured provider, and where each alias leads."""
    if ctx.invoked_subcommand is not None:
        return
    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        if provider:
            check_provider(settings, provider)
        names = [provider] if provider else list(settings.providers)
        results = run_async(lambda: gather_models(settings, names, details=json_output))
        found: list[ModelInfo] = []
        for name, result in results.items():
            if isinstance(result, list):
                found.extend(result)
                for cut in get_cut_listings(result):
                    context.diagnostics.warning(cut)
            else:
                context.diagnostics.warning(f"{name}: {result}")
        if not any(isinstance(r, list) for r in results.values()):
            fail(context, "no provider answered; `cortan config show` lists them")
        routes = describe_names(settings, results, provider)
        if json_output:
            report = {"models": [_as_dict(m) for m in found], "names": [asdict(r) for r in routes]}
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
        else:
            _print_tables(found, routes, context.color_enabled)


async def gather_models(
    settings: Settings, names: list[str], *, details: bool = False
) -> dict[str, Listing]:
    """Ask every named provider at once; a failure is kept as that provider's result."""
    from cortan.app import App

    services = App.build(settings)
    try:
        return await services.list_models(names, details=details)
    finally:
        await services.aclose()


@app.command("show")
def show(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="provider:model, an alias, or a bare name.", autocompletion=complete_model
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What a model's server says of it: window, capabilities, size, quantisation."""
    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        info = run_async(lambda: _show(settings, model))
        if json_output:
            sys.stdout.write(json.dumps(_as_dict(info), indent=2) + "\n")
            return
        from cortan.core.text import make_visible

        for label, value in _show_rows(info):
            sys.stdout.write(f"{label:<14} {make_visible(value)}\n")


@app.command("pull")
def pull(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The model, as ollama pull names it (or provider:NAME)."
        ),
    ],
) -> None:
    """Download a model onto its Ollama server, showing how far it got (Ctrl-C stops).

    On a terminal a bar per layer; piped, a line per stage. Pulling again resumes.
    """
    from cortan.cli.runner import EXIT_INTERRUPTED
    from cortan.core.errors import UsageError
    from cortan.render.pull import make_pull_view

    context = get_context(ctx)
    with guard(context):
        if not model.strip():
            raise UsageError("name the model to pull, e.g. `cortan models pull llama3.2`")
        settings = context.load_settings()
        view = make_pull_view(sys.stderr, color=context.color_enabled)
        try:
            name = run_async(lambda: _pull(settings, model, view))
        except KeyboardInterrupt:
            view.close()
            context.diagnostics.notice(
                "pull stopped; the same command again resumes where it stopped"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        view.close()
        context.diagnostics.notice(f"{name} is ready")


async def _pull(settings: Settings, name: str, view: PullView) -> str:
    """Pull ``name`` onto its provider's server; the route it pulled, for the last line."""
    from cortan.app import App
    from cortan.core.errors import ProviderError

    services = App.build(settings)
    try:
        route = services.resolve(name)
        status = ""
        async for step in services.pull_model(name):
            view.update(step)
            status = step.status
        if status != "success":
            raise ProviderError(
                f"the server stopped sending before the pull of {route} was done: "
                "the same command again resumes it"
            )
        return str(route)
    finally:
        await services.aclose()


async def _show(settings: Settings, name: str) -> ModelInfo:
    from cortan.app import App

    services = App.build(settings)
    try:
        route = services.resolve(name)
        return (await services.show_model(name))._replace(name=route.model)
    finally:
        await services.aclose()


def _show_rows(info: ModelInfo) -> list[tuple[str, str]]:
    unknown = "not said by the server"
    caps = ", ".join(info.capabilities) if info.capabilities is not None else unknown
    window = f"{info.context_length} tokens" if info.context_length else unknown
    return [
        ("model", f"{info.provider}:{info.name}"),
        ("context", window),
        ("capabilities", caps),
        ("family", info.family or unknown),
        ("parameters", info.parameter_size or unknown),
        ("quantisation", info.quantization or unknown),
    ]


def describe_names(
    settings: Settings,
    results: dict[str, list[ModelInfo] | CortanError],
    provider: str | None,
) -> list[NameRoute]:
    """The default model and each alias: its route, whether it was found, its fallbacks."""
    from cortan.cli.checks import has_model
    from cortan.core.errors import CortanError
    from cortan.engine.routes import Router

    router = Router(settings)
    rows: list[NameRoute] = []
    for name in [None, *settings.aliases]:
        try:
            chain = router.get_chain(name)
        except CortanError as exc:
            rows.append(NameRoute(name or DEFAULT, error=str(exc)))
            continue
        route = chain[0]
        if provider and route.provider != provider:
            continue
        listed = results.get(route.provider)
        available = has_model(listed, route.model) if isinstance(listed, list) else None
        fallback = [str(r) for r in chain[1:]]
        rows.append(NameRoute(name or DEFAULT, str(route), available, fallback))
    return rows


def _as_dict(model: ModelInfo) -> dict[str, object]:
    return {
        "name": model.name,
        "provider": model.provider,
        "family": model.family,
        "parameter_size": model.parameter_size,
        "size": model.size,
        "context_length": model.context_length,
        "capabilities": list(model.capabilities) if model.capabilities is not None else None,
        "quantization": model.quantization,
    }


def _print_tables(found: list[ModelInfo], routes: list[NameRoute], color: bool) -> None:
    from rich.table import Table

    from cortan.cli.tables import print_tables
    from cortan.core.text import make_visible

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "provider", "family", "parameters", "size"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for m in found:
        size = f"{m.size / 1e9:.1f} GB" if m.size else ""
        cells = (m.name, m.provider, m.family or "", m.parameter_size or "", size)
        table.add_row(*(make_visible(c) for c in cells))
    names = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("alias", "resolves to", "found", "fallback"):
        names.add_column(column)
    for row in routes:
        found_cell = "?" if row.available is None else "yes" if row.available else "no"
        target = row.resolves_to or row.error or ""
        route_cells = (row.name, target, found_cell, ", ".join(row.fallback))
        names.add_row(*(make_visible(c) for c in route_cells))
    print_tables([table, names] if routes else [table], color)  # -p X: no alias leads there
