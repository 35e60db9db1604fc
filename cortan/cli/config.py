"""``cortan config``: where the config file is, and what cortan makes of it."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from cortan.cli.group import runs_by_default
from cortan.cli.runner import get_context, guard
from cortan.core.text import make_visible

app = typer.Typer(
    help="The configuration: shown with no command (--json too); path.",
    cls=runs_by_default("show"),
)


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    """With no subcommand: print the effective configuration."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(show, ctx=ctx)


SECRET_NAMES = ("api_key", "key", "token", "secret", "password")
SECRET_SUFFIXES = ("_key", "_secret", "_password", "_api_token", "_access_token")


@app.command("path")
def path() -> None:
    """Print the path of the config file (it need not exist)."""
    from cortan.config.paths import get_config_file

    sys.stdout.write(f"{get_config_file()}\n")


@app.command("show")
def show(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of TOML.")
    ] = False,
) -> None:
    """Print the effective configuration, every source applied, secrets redacted."""
    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        data = redact(settings.model_dump(mode="json"))
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        else:
            sys.stdout.write(to_toml(data))


def redact(data: Any, key: str = "") -> Any:
    """Hide values whose key names a secret; a variable's *name* is not a secret."""
    if isinstance(data, dict):
        return {k: redact(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v, key) for v in data]
    name = key.lower()
    secret = name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES)
    return "********" if secret and data else data


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A TOML rendering of plain settings data (scalars, lists, nested tables)."""
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, dict) and v is not None]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    # Values come from files and variables: nothing in them may reach the terminal raw.
    lines = [make_visible(f"{_key(k)} = {json.dumps(v, ensure_ascii=False)}") for k, v in scalars]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{_key(k)}"
        has_scalars = any(not isinstance(x, dict) for x in v.values())
        header = f"\n[{make_visible(name)}]\n" if has_scalars or not v else ""
        out += header + to_toml(v, name + ".")
    return out


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
