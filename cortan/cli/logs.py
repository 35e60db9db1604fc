"""``cortan logs``: the newest stored exchanges, or the messages matching a search.

Layer: cli. One line per message, newest first, with its conversation, role,
model and token counts; ``-n`` counts exchanges (a question with its answer), and
with ``-q``, matching messages. ``-q`` searches the full-text index (any text is
safe: it is never read as FTS5 syntax). ``--json`` prints a list for scripts. On a
terminal the text column is cut to the window, so that no line wraps.

``cortan logs rm`` deletes: messages by id (the first column of ``logs``), a
whole conversation (``--session NAME`` or id), every conversation last active
more than an age ago (``--older-than 90d``, with ``--dry-run`` to see first), or
everything (``--all``). ``--all`` and ``--older-than`` ask first on a terminal and
need ``--yes`` elsewhere. A conversation left with no message goes with its last one.
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
    from cortan.store.retention import Pruned, Reclaimed

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
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Every conversation last active more than AGE ago: 90d, 12h, 30m, 2w.",
        ),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every stored conversation and message.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --older-than: say what would go, only.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="With --older-than: print what went as JSON.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="--all or --older-than without asking.")
    ] = False,
) -> None:
    """Delete stored messages by id, a whole conversation, old ones, or everything."""
    context = get_context(ctx)
    with guard(context):
        chosen = sum((bool(ids), session is not None, older_than is not None, everything))
        if chosen != 1:
            raise UsageError(
                "say what to remove: message ids, --session NAME, --older-than AGE or --all"
                " (one of them)"
            )
        if older_than is not None:
            from cortan.core.ages import parse_age

            _prune(context, parse_age(older_than), yes=yes, dry_run=dry_run, as_json=json_output)
            return
        if dry_run or json_output:
            raise UsageError("--dry-run and --json go with --older-than")
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
    question = f"Delete all {count_of(total, 'conversation')} and their messages?"
    _confirm(context, question, "every conversation", yes=yes)
    gone = store.delete_all()
    context.diagnostics.notice(f"{count_of(gone, 'conversation')} removed")


def _confirm(context: Context, question: str, what: str, *, yes: bool) -> None:
    """Ask ``question`` on a terminal; elsewhere only ``--yes`` lets ``what`` go."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"not removing {what} without confirmation: stdin is not a terminal, so add --yes"
        )
    if not typer.confirm(question, default=False, err=True):
        fail(context, "nothing removed")


def _prune(context: Context, age: float, *, yes: bool, dry_run: bool, as_json: bool) -> None:
    """``--older-than``: remove (or count) the conversations idle for ``age`` seconds,
    then give the space back. Nothing that old is a success: a daily job finds that."""
    import time

    from cortan.cli.transcript import local_time
    from cortan.store.retention import Pruned, Reclaimed

    before = time.time() - age
    since = f"last active before {local_time(before)}"
    store = _open_existing()
    found, space, where = Pruned(0, 0), Reclaimed(0, 0), ""
    if store is not None:
        where = str(store.path)
        with store:
            found = store.prune(before, dry_run=True)
            if found.conversations and not dry_run:
                what = f"{count_of(found.conversations, 'conversation')} {since}"
                _confirm(context, f"Delete {what} ({_messages(found)})?", what, yes=yes)
                found = store.prune(before)
                space = store.reclaim_space()
    _say_pruned(context, found, space, where, since=since, before=before, dry_run=dry_run,
                as_json=as_json)  # fmt: skip


def _messages(pruned: Pruned) -> str:
    return count_of(pruned.messages, "message")


def _say_pruned(
    context: Context,
    pruned: Pruned,
    space: Reclaimed,
    where: str,
    *,
    since: str,
    before: float,
    dry_run: bool,
    as_json: bool,
) -> None:
    import shlex

    from cortan.core.text import format_size

    if as_json:
        from cortan.cli.transcript import iso_time
        from cortan.render.report import dump_json

        data = {
            "conversations": pruned.conversations,
            "messages": pruned.messages,
            "before": iso_time(before),
            "dry_run": dry_run,
            "bytes_before": space.before,
            "bytes_after": space.after,
            "bytes_left_free": space.left,
        }
        sys.stdout.write(dump_json(data, indent=2) + "\n")
    gone = f"{count_of(pruned.conversations, 'conversation')} ({_messages(pruned)}) {since}"
    if not pruned.conversations:
        context.diagnostics.notice(f"nothing to remove: no conversation {since}")
    elif dry_run:
        context.diagnostics.notice(f"would remove {gone}; nothing removed (--dry-run)")
    else:
        shrank = ""
        if space.after < space.before:
            shrank = f"; the store went from {format_size(space.before)} to "
            shrank += format_size(space.after)
        if space.left:
            shrank = f"; {format_size(space.left)} stays free inside the store, which "
            shrank += "predates giving space back while others write: `sqlite3 "
            shrank += f"{shlex.quote(where)} VACUUM` with no cortan running gives it back"
        context.diagnostics.notice(f"removed {gone}{shrank}")
