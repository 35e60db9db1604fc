"""Options that several commands take, declared once (``ask``, ``chat``, ``batch``, ``cmd``).

Layer: cli. The same flag with the same words in its help: a change to what
``--model`` accepts, or how ``--allow-secrets`` is explained, is made here once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cortan.cli.names import complete_model, complete_role, complete_think

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="MODEL",
        help="provider:model, an alias, or a bare model name.",
        autocompletion=complete_model,
    ),
]
NoFallbackOption = Annotated[
    bool, typer.Option("--no-fallback", help="Only the model asked for: no fallback chain.")
]
RoleOption = Annotated[
    str | None,
    typer.Option(
        "--role",
        metavar="NAME",
        help="A named role (`cortan roles` lists them).",
        autocompletion=complete_role,
    ),
]
# `ask` also takes `-r`, as `chat` spells it: `cortan -r shell` is routed by ask's options
# (cli/main.py), so a short flag only chat knew was taken for a question and refused.
# (`batch` keeps --role alone: there `-r` would read as --resume or --restart.)
AskRoleOption = Annotated[
    str | None,
    typer.Option(
        "--role",
        "-r",
        metavar="NAME",
        help="A named role (`cortan roles` lists them).",
        autocompletion=complete_role,
    ),
]
NoLogOption = Annotated[
    bool, typer.Option("--no-log", help="Keep this exchange out of the session store.")
]
AllowSecretsOption = Annotated[
    bool,
    typer.Option(
        "--allow-secrets", help="Send to a remote provider even what looks like a secret."
    ),
]
ThinkOption = Annotated[
    str | None,
    typer.Option(
        "--think",
        metavar="LEVEL",
        help="Thinking: on, off, low, medium, high.",
        autocompletion=complete_think,
    ),
]
NoThinkOption = Annotated[bool, typer.Option("--no-think", help="Ask the model not to think.")]
GenerationOption = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", metavar="KEY=VALUE", help="A generation option (repeatable)."),
]
MaxTokensOption = Annotated[
    int | None, typer.Option("--max-tokens", metavar="N", help="Longest answer, in tokens.")
]
