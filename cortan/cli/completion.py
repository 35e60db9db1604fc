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

from cortan.cli.names import complete_shell
from cortan.cli.runner import get_context, guard
from cortan.core.errors import UsageError

PROG_NAME = "cortan"
COMPLETE_VAR = "_CORTAN_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


#: bash splits the word under the cursor at ``:`` (COMP_WORDBREAKS), so Typer's script,
#: which sends COMP_WORDS, makes ``-m openai:g<Tab>`` the words ``openai``, ``:``, ``g``.
#: This one sends the line up to the cursor, which Python splits as the shell would, and
#: the characters at which readline starts the text it will replace.
BASH_SCRIPT = """\
_cortan_completion() {
    local IFS=$'\\n'
    COMPREPLY=( $( env COMP_LINE="${COMP_LINE:0:COMP_POINT}" \\
                   COMP_WORDBREAKS="$COMP_WORDBREAKS" \\
                   _CORTAN_COMPLETE=complete_bash "$1" ) )
    return 0
}

complete -o default -F _cortan_completion cortan"""


def prepare() -> None:
    """Register Typer's completion classes (its ``--install-completion`` would do this),
    with bash's replaced by :func:`make_bash_class`'s."""
    from typer._click.shell_completion import add_completion_class
    from typer._completion_classes import completion_init

    completion_init()
    add_completion_class(make_bash_class(), "bash")


def make_bash_class() -> type:
    """Typer's bash completion, reading the line :data:`BASH_SCRIPT` sends.

    Each offer is cut to the part readline replaces, after the last break character:
    for ``openai:g`` that is ``g``, so ``openai:gpt-4o`` goes back as ``gpt-4o``.
    (Made on the first Tab only: Typer's class is not imported by anything else.)
    """
    import os

    from typer._click.shell_completion import CompletionItem, split_arg_string
    from typer._completion_classes import BashComplete

    class LineBashComplete(BashComplete):
        _cut = ""

        def get_completion_args(self) -> tuple[list[str], str]:
            line = os.environ.get("COMP_LINE")
            if not line:  # an older script: Typer's own protocol
                return super().get_completion_args()
            words = split_arg_string(line)
            incomplete = words.pop() if words and line and not line[-1].isspace() else ""
            breaks = set(os.environ.get("COMP_WORDBREAKS", ":=@")) - set(" \t\n\"'")
            last = max((incomplete.rfind(c) for c in breaks), default=-1)
            self._cut = incomplete[: last + 1]
            return words[1:], incomplete

        def format_completion(self, item: CompletionItem) -> str:
            return str(item.value).removeprefix(self._cut)

    return LineBashComplete


def get_script(shell: str) -> str:
    """The completion script for ``shell``; an unknown shell is a UsageError."""
    if shell not in SHELLS:
        raise UsageError(
            f"no completion for the shell {shell[:40]!r}: choose one of {', '.join(SHELLS)}"
        )
    if shell == "bash":
        return BASH_SCRIPT
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell)


def completion(
    ctx: typer.Context,
    shell: Annotated[
        str,
        typer.Argument(
            metavar="SHELL", help="bash, zsh, fish or powershell.", autocompletion=complete_shell
        ),
    ],
) -> None:
    """Print the script that makes Tab complete cortan's commands and options in SHELL.

    bash: eval "$(cortan completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc,
    after compinit; fish: cortan completion fish > ~/.config/fish/completions/cortan.fish
    """
    with guard(get_context(ctx)):
        sys.stdout.write(get_script(shell.strip().lower()) + "\n")
