"""``cortan logs``: the newest stored exchanges, or the messages matching a search.

Layer: cli. One line per message, newest first, with its conversation, role,
model and token counts; ``-n`` counts exchanges (a question with its answer), and
with ``-q``, matching messages. ``-q`` searches the full-text index (any text is
safe: it is never read as FTS5 syntax). ``--json`` prints a list for scripts. On a
terminal the text column is cut to the window, so that no line wraps.
"""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.runner import get_context, guard

if TYPE_CHECKING:
    from cortan.store import StoredMessage


def logs(
    ctx: typer.Context,
    count: Annotated[
        int,
        typer.Option(
            "-n",
            metavar="N",
            help="Show the newest N exchanges (with -q: N matching messages).",
            min=1,
        ),
    ] = 20,
    query: Annotated[
        str | None,
        typer.Option(
            "--query", "-q", metavar="WORDS", help="Only messages containing these words."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Show stored messages, newest first, with model and tokens."""
    from cortan.cli import transcript
    from cortan.render.report import dump_json
    from cortan.render.sanitize import sanitize

    context = get_context(ctx)
    with guard(context):
        entries = _read(count, query)
        if json_output:
            data = [transcript.log_to_json(entry) for entry in entries]
            sys.stdout.write(dump_json(data, indent=2) + "\n")
        elif entries:
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
            rows = transcript.log_rows(entries, width=width)
            sys.stdout.write(sanitize("\n".join(rows)) + "\n")
        else:
            context.diagnostics.notice("no matching messages" if query else "nothing stored yet")


def _read(count: int, query: str | None) -> list[StoredMessage]:
    from cortan.core.text import check_argument

    if query is not None:
        check_argument(query, "the --query text")
    from cortan.cli.continuation import open_store

    store = open_store(create=False, reading=True)
    if store is None:
        return []
    with store:
        return store.search(query, count) if query is not None else store.recent_exchanges(count)
