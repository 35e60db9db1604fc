"""``cortan cache``: what the response cache holds, and forgetting it.

Layer: cli (thin: open the store's cache table, print, exit). The cache itself is
the engine's (:mod:`cortan.engine.cache`) and the store's
(:mod:`cortan.store.cache`); docs/configuration.md ("Response cache") explains it.
The store is only read here, never created: with no store there is no cache.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.group import runs_by_default
from cortan.cli.runner import get_context, guard

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.store.cache import CacheStats, CacheStore

app = typer.Typer(
    help="The response cache: its stats with no command (--json too); clear.",
    cls=runs_by_default("stats"),
)


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    """With no subcommand: show what is cached."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(stats, ctx=ctx)


@app.command("stats")
def stats(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """How many answers are cached, their size, how often they were used."""
    import sys

    from cortan.render.report import dump_json

    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        cache = _open(settings, reading=True)
        if cache is None:
            figures = None
        else:
            with cache:
                figures = cache.stats()
        data = _as_json(settings, figures)
        if json_output:
            sys.stdout.write(dump_json(data, indent=2) + "\n")
        else:
            sys.stdout.write(_as_text(data))


@app.command("clear")
def clear(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="Only this model's answers (provider:model or name).",
        ),
    ] = None,
) -> None:
    """Forget cached answers: all of them, or one model's."""
    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        cache = _open(settings)
        if cache is None:
            context.diagnostics.notice("the cache is empty (there is no store yet)")
            return
        provider = name = None
        if model is not None:
            from cortan.engine.routes import Router

            route = Router(settings).resolve(model)
            provider, name = route.provider, route.model
        with cache:
            gone = cache.clear(provider=provider, model=name)
        which = f" of {provider}:{name}" if model else ""
        answers = "answer" if gone == 1 else "answers"
        context.diagnostics.notice(f"forgot {gone} cached {answers}{which}")


def _open(settings: Settings, *, reading: bool = False) -> CacheStore | None:
    from cortan.config.paths import get_data_dir
    from cortan.store import get_store_path
    from cortan.store.cache import CacheStore

    data_dir = get_data_dir()
    if not os.path.lexists(get_store_path(data_dir)):
        return None
    limits = settings.cache
    return CacheStore.open(
        data_dir,
        max_bytes=limits.max_bytes,
        max_age=limits.max_age_days * 86400.0,
        reading=reading,
    )


def _as_json(settings: Settings, figures: CacheStats | None) -> dict[str, object]:
    limits = settings.cache
    return {
        "path": str(figures.path) if figures else None,
        "entries": figures.entries if figures else 0,
        "bytes": figures.bytes if figures else 0,
        "hits": figures.hits if figures else 0,
        "oldest": _iso(figures.oldest) if figures else None,
        "newest": _iso(figures.newest) if figures else None,
        "max_bytes": limits.max_bytes,
        "max_age_days": limits.max_age_days,
        "models": list(limits.models),
        "sampled": limits.sampled,
    }


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def _as_text(data: dict[str, object]) -> str:
    from cortan.core.text import format_size

    size, limit = data["bytes"], data["max_bytes"]
    assert isinstance(size, int)
    assert isinstance(limit, int)
    models = data["models"]
    always = ", ".join(models) if isinstance(models, list) and models else "none (--cache asks)"
    rows = [
        ("entries", str(data["entries"])),
        ("size", f"{format_size(size)} of {format_size(limit)}"),
        ("hits", str(data["hits"])),
        ("oldest", str(data["oldest"] or "-")),
        ("newest", str(data["newest"] or "-")),
        ("kept for", f"{data['max_age_days']:g} days"),
        ("cached always", always),
        ("sampled answers", "cached" if data["sampled"] else "not cached (cache.sampled)"),
        ("store", str(data["path"] or "not created yet")),
    ]
    width = max(len(name) for name, _ in rows)
    return "".join(f"{name:<{width}}  {value}\n" for name, value in rows)
