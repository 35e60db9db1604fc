"""``cortan keys``: store, list and remove API keys in the OS keyring.

A key is read without echo on a terminal (``getpass``) or from stdin when piped
(``pass show x | cortan keys set work``), and goes only to the keyring: never to a
file, never to output. ``list`` says where each provider's key comes from, never
what it is, and does not run ``api_key_cmd`` (a password manager may prompt).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.group import runs_by_default
from cortan.cli.runner import Context, check_provider, fail, get_context, guard

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig, Settings

app = typer.Typer(
    help="API keys in the OS keyring: listed with no command (--json too); set, rm.",
    cls=runs_by_default("list"),
)


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    """With no subcommand: list which providers have a key."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_keys, ctx=ctx)


MAX_KEY_BYTES = 64 * 1024
ProviderArg = Annotated[
    str, typer.Argument(metavar="PROVIDER", help="A provider name, as in `cortan keys list`.")
]


@app.command("set")
def set_key(ctx: typer.Context, provider: ProviderArg) -> None:
    """Store PROVIDER's API key in the OS keyring (asked without echo; piped stdin is read)."""
    from cortan.config.keys import check_key, get_keyring_name, set_keyring_key

    context = get_context(ctx)
    with guard(context):
        config = get_key_config(context.load_settings(), provider)
        key = check_key(provider, read_key(provider))
        set_keyring_key(provider, key, config)
        context.diagnostics.notice(
            f"stored the key for {provider!r} in the OS keyring ({get_keyring_name()})"
        )
        warn_shadowed(context, provider, config)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Show which providers have a key and where it comes from (never the key)."""
    context = get_context(ctx)
    with guard(context):
        rows = describe_keys(context.load_settings())
        if json_output:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        else:
            print_rows(rows, context.color_enabled)


@app.command("rm")
def remove_key(ctx: typer.Context, provider: ProviderArg) -> None:
    """Remove PROVIDER's API key from the OS keyring."""
    from cortan.config.keys import delete_keyring_key

    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        check_provider(settings, provider)
        config = settings.providers[provider]
        if not delete_keyring_key(provider, config):
            fail(context, f"the OS keyring holds no key for {provider!r}; nothing was removed")
        context.diagnostics.notice(f"removed the key for {provider!r} from the OS keyring")
        warn_shadowed(context, provider, config)


def get_key_config(settings: Settings, provider: str) -> ProviderConfig:
    """The provider's config, refusing names that are not configured or take no key."""
    from cortan.core.errors import UsageError

    check_provider(settings, provider)
    config = settings.providers[provider]
    if config.kind == "ollama":
        raise UsageError(f"provider {provider!r} is an Ollama server, which takes no API key")
    return config


def read_key(provider: str) -> str:
    """The key from a prompt without echo on a terminal, else from stdin's first line."""
    from cortan.core.errors import UsageError

    if sys.stdin.isatty():
        import getpass

        try:
            return getpass.getpass(f"API key for {provider} (not shown): ")
        except EOFError:
            raise UsageError("no key was given") from None
    data = sys.stdin.buffer.read(MAX_KEY_BYTES + 1)
    if len(data) > MAX_KEY_BYTES:
        raise UsageError("stdin holds more than 64 KiB: that is not an API key")
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else ""


def warn_shadowed(context: Context, provider: str, config: ProviderConfig) -> None:
    """Say when a variable or command is looked up before the keyring entry."""
    if config.api_key_env and os.environ.get(config.api_key_env, "").strip():
        context.diagnostics.warning(
            f"{config.api_key_env} is set in the environment and is used before the keyring"
        )
    elif config.api_key_cmd:
        context.diagnostics.warning(
            f"provider {provider!r} has api_key_cmd, which is used before the keyring"
        )


def describe_keys(settings: Settings) -> list[dict[str, object]]:
    """One row per provider: whether it needs a key, whether it has one, and from where."""
    from cortan.config.keys import locate_api_key

    rows: list[dict[str, object]] = []
    for name, config in settings.providers.items():
        needs = config.kind == "openai" and not config.is_local()
        row: dict[str, object] = {"provider": name, "kind": config.kind, "needs_key": needs}
        if config.kind == "ollama":
            row.update(key="-", source=None, where="takes no key")
        else:
            found = locate_api_key(name, config)
            row.update(key=_state(found.source, needs), source=found.source)
            row["where"] = _where(name, config, found.source, found.detail, needs)
        rows.append(row)
    return rows


def _state(source: str | None, needs: bool) -> str:
    if source == "command":
        return "command"
    if source is not None:
        return "set"
    return "missing" if needs else "-"


def _where(name: str, config: ProviderConfig, source: str | None, detail: str, needs: bool) -> str:
    from cortan.config.keys import suggest_variable

    if source == "command":
        return f"api_key_cmd `{detail}`"
    if source is not None:
        return f"{source} {detail}"
    if not needs:
        return "not needed (local server)"
    variable = suggest_variable(name, config)
    if detail == "no keyring backend":
        if config.api_key_env:
            return f"no keyring backend: set {variable}"
        return f'no keyring backend: add api_key_env = "{variable}" and set it'
    if config.api_key_env:
        return f"run `cortan keys set {name}` or set {variable}"
    return f"run `cortan keys set {name}`"


def print_rows(rows: list[dict[str, object]], color: bool) -> None:
    from rich.table import Table

    from cortan.cli.tables import print_tables
    from cortan.render.sanitize import sanitize

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("provider", "kind", "key", "from"):
        table.add_column(column)
    for row in rows:
        cells = (row["provider"], row["kind"], row["key"], row["where"])
        table.add_row(*(sanitize(str(c)) for c in cells))
    print_tables([table], color)
