"""``cortan logs``: the newest stored exchanges, or the messages matching a search.

Layer: cli. One line per message, newest first, with its conversation, role,
model and token counts; ``-n`` counts exchanges (a question with its answer), and
with ``-q``, matching messages. ``-q`` searches the full-text index (any text is
safe: it is never read as FTS5 syntax). ``--json`` prints a list for scripts. On a
terminal the text column is cut to the window, so that no line wraps.

``cortan logs rm`` deletes: messages by id (the first column of ``logs``), a
whole conversation (``--session NAME`` or id), or everything (``--all``, which
asks first on a terminal and needs ``--yes`` elsewhere). A conversation left with
no message goes with its last one.
"""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.names import complete_session
from cortan.cli.runner import fail, get_context, guard
from cortan.core.errors import UsageError
from cortan.core.text import count_of

if TYPE_CHECKING:
    from cortan.cli.runner import Context
    from cortan.store import SessionStore, StoredMessage

app = typer.Typer(
    help="Show stored messages, newest first; `logs rm` deletes them.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
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
    """Show stored messages, newest first, with model and tokens; `logs rm` deletes."""
    if ctx.invoked_subcommand is not None:
        return
    from cortan.cli import transcript
    from cortan.render.report import dump_json
    from cortan.render.sanitize import sanitize

    context = get_context(ctx)
    with guard(context):
        # The table shows a line of each message: read no more of it than that.
        entries = _read(count, query, preview=None if json_output else transcript.PREVIEW * 4)
        if json_output:
            data = [transcript.log_to_json(entry) for entry in entries]
            sys.stdout.write(dump_json(data, indent=2) + "\n")
        elif entries:
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
            rows = transcript.log_rows(entries, width=width)
            sys.stdout.write(sanitize("\n".join(rows)) + "\n")
        else:
            context.diagnostics.notice("no matching messages" if query else "nothing stored yet")


def _read(count: int, query: str | None, preview: int | None = None) -> list[StoredMessage]:
    from cortan.core.text import check_argument

    if query is not None:
        check_argument(query, "the --query text")
    from cortan.cli.continuation import open_store

    store = open_store(create=False, reading=True)
    if store is None:
        return []
    with store:
        if query is not None:
            return store.search(query, count, preview=preview)
        return store.recent_exchanges(count, preview=preview)


@app.command("rm")
def remove(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None,
        typer.Argument(metavar="ID", help="Message ids, as `logs` shows them."),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(
            "--session",
            metavar="NAME",
            help="The whole conversation NAME (or id).",
            autocompletion=complete_session,
        ),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every stored conversation and message.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="--all without asking.")] = False,
) -> None:
    """Delete stored messages by id, a whole conversation, or everything (--all)."""
    context = get_context(ctx)
    with guard(context):
        chosen = sum((bool(ids), session is not None, everything))
        if chosen != 1:
            raise UsageError(
                "say what to remove: message ids, --session NAME or --all (one of them)"
            )
        store = _open_existing()
        if store is None:
            fail(context, "nothing to remove: nothing is stored yet")
        with store:
            if everything:
                _remove_all(context, store, yes=yes)
            elif session is not None:
                _remove_session(context, store, session)
            else:
                _remove_ids(context, store, ids or [])


def _open_existing() -> SessionStore | None:
    from cortan.cli.continuation import open_store

    return open_store(create=False)


def _remove_ids(context: Context, store: SessionStore, ids: list[int]) -> None:
    wanted = list(dict.fromkeys(ids))
    removed = store.remove_messages(wanted)
    if removed:
        context.diagnostics.notice(count_of(len(removed), "message") + " removed")
    missing = [i for i in wanted if i not in removed]
    if missing:
        listed = ", ".join(str(i) for i in missing)
        fail(context, f"no stored message with id {listed}: `cortan logs --json` shows the ids")


def _remove_session(context: Context, store: SessionStore, ref: str) -> None:
    found = store.find(ref)
    if found is None:
        fail(context, f"nothing to remove: no stored conversation {ref!r}")
    store.delete(found.id)
    context.diagnostics.notice(
        f"{found.label} removed with its {count_of(found.message_count, 'message')}"
    )


def _remove_all(context: Context, store: SessionStore, *, yes: bool) -> None:
    total = store.count_conversations()
    if total == 0:
        fail(context, "nothing to remove: nothing is stored yet")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "not removing every conversation without confirmation: stdin is not a "
                "terminal, so add --yes"
            )
        question = f"Delete all {count_of(total, 'conversation')} and their messages?"
        if not typer.confirm(question, default=False, err=True):
            fail(context, "nothing removed")
    gone = store.delete_all()
    context.diagnostics.notice(f"{count_of(gone, 'conversation')} removed")
