"""``cortan chat`` and bare ``cortan``: the interactive shell (see cortan/shell)."""

from __future__ import annotations

import typer

from cortan.cli.runner import Context, fail, get_context


def chat(ctx: typer.Context) -> None:
    """Open the interactive chat shell."""
    open_shell(get_context(ctx))


def open_shell(context: Context) -> None:
    fail(context, "the interactive shell is not built yet: use `cortan ask`", 2)
