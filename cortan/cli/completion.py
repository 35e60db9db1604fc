"""``cortan completion SHELL``: the script that makes Tab complete cortan's commands.

Layer: cli. The script (Typer's, for bash, zsh, fish and PowerShell) calls cortan
back with ``_CORTAN_COMPLETE`` set on every Tab; :func:`prepare` then readies Typer's
completion classes and :mod:`cortan.cli.main` registers every command, so that
``cortan ask --mo<Tab>`` finds ``--model`` although a normal run registers only the
command it runs. Nothing here is imported by ``cortan --version`` or ``--help``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cortan.cli.runner import get_context, guard
from cortan.core.errors import UsageError

PROG_NAME = "cortan"
COMPLETE_VAR = "_CORTAN_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def prepare() -> None:
    """Register Typer's completion classes (its ``--install-completion`` would do this)."""
    from typer._completion_classes import completion_init

    completion_init()


def get_script(shell: str) -> str:
    """The completion script for ``shell``; an unknown shell is a UsageError."""
    if shell not in SHELLS:
        raise UsageError(
            f"no completion for the shell {shell[:40]!r}: choose one of {', '.join(SHELLS)}"
        )
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell)


def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh, fish or powershell.")],
) -> None:
    """Print the script that makes Tab complete cortan's commands and options in SHELL.

    bash: eval "$(cortan completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc,
    after compinit; fish: cortan completion fish > ~/.config/fish/completions/cortan.fish
    """
    with guard(get_context(ctx)):
        sys.stdout.write(get_script(shell.strip().lower()) + "\n")
