"""``cortan shell-init bash|zsh|fish``: print the key binding for command mode.

Layer: cli (thin). ``eval "$(cortan shell-init bash)"`` in ~/.bashrc (zsh: ~/.zshrc;
fish: ``cortan shell-init fish | source`` in config.fish) binds Alt-E to turn the
words on the command line into a command left there to edit and run
(:mod:`cortan.command.snippets` says why that key).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cortan.cli.names import complete_shell
from cortan.cli.runner import get_context, guard


def shell_init(
    ctx: typer.Context,
    shell: Annotated[
        str,
        typer.Argument(metavar="SHELL", help="bash, zsh or fish.", autocompletion=complete_shell),
    ],
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY",
            help=r"Bind this key instead of Alt-E (the shell's notation: \ee).",
        ),
    ] = None,
) -> None:
    """Print a key binding for your shell: Alt-E turns the line's words into a command."""
    from cortan.command.snippets import SHELLS, snippet
    from cortan.core.errors import UsageError

    context = get_context(ctx)
    with guard(context):
        name = shell.strip().lower()
        if name not in SHELLS:
            raise UsageError(f"cortan shell-init knows {', '.join(SHELLS)}, not {shell!r}")
        if key is not None and (not key or any(c in key for c in "'\"\n\r\x00 ") or len(key) > 32):
            raise UsageError("--key takes a key in the shell's notation, like \\ee or \\C-g")
        sys.stdout.write(snippet(name, key))
