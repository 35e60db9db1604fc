"""``cortan sessions``: list, show, rename, delete and export stored conversations.

Layer: cli (thin: find the conversation, call the store, print). A conversation is
named by its name or its id (``7`` or ``#7``, as ``sessions list`` shows it). The
store is only read here, never created: with no store there is nothing to list.
"""

from __future__ import annotations

import enum
import errno
import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.group import runs_by_default
from cortan.cli.names import complete_session
from cortan.cli.runner import check_output_path, fail, get_context, guard
from cortan.core.errors import CortanError, UsageError, why_unwritable

if TYPE_CHECKING:
    from cortan.cli.runner import Context
    from cortan.store import Conversation, SessionStore, StoredMessage

app = typer.Typer(
    help="Stored conversations: listed with no command (-n, --json too); show, rename, rm, export.",
    cls=runs_by_default("list"),
)


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    """With no subcommand: list them, as `cortan logs` lists messages."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_sessions, ctx=ctx)


NameArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The conversation's name, id (7 or #7), or `cortan serve` request id.",
        autocompletion=complete_session,
    ),
]


class ExportFormat(enum.StrEnum):
    md = "md"
    json = "json"


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("-n", metavar="N", help="Show at most N, newest first.", min=1)
    ] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List conversations, most recently active first."""
    from cortan.cli import transcript
    from cortan.render.report import dump_json

    context = get_context(ctx)
    with guard(context):
        conversations = _list(limit)
        if json_output:
            data = [transcript.summary_to_json(c) for c in conversations]
            _write(dump_json(data, indent=2) + "\n")
        elif conversations:
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
            rows = transcript.conversation_rows(conversations, width=width)
            _write("\n".join(rows) + "\n", sanitized=True)
        else:
            context.diagnostics.notice("no stored conversations yet")


@app.command("show")
def show(ctx: typer.Context, name: NameArg) -> None:
    """Print one conversation, every message with its model, tokens and status."""
    from cortan.cli import transcript

    with guard(context := get_context(ctx)):
        conversation, messages = _load(name, context)
        _write(transcript.to_text(conversation, messages), sanitized=True)


@app.command("rename")
def rename(
    ctx: typer.Context,
    old: NameArg,
    new: Annotated[str, typer.Argument(metavar="NEW_NAME", help="The new name (not a number).")],
) -> None:
    """Give a conversation a new name."""
    with guard(get_context(ctx)):
        store = _require_store(old)
        with store:
            store.rename(_find(store, old).id, new)


@app.command("rm")
def remove(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a conversation and all its messages (asks first on a terminal)."""
    context = get_context(ctx)
    with guard(context):
        nothing = f"nothing to remove: {_not_found(name)}"  # 1, as for rm and `logs rm`
        if (store := _open_store(name)) is None:
            fail(context, nothing)
        with store:
            if (conversation := store.find(name)) is None:
                fail(context, nothing)
            if not yes:
                _confirm(context, conversation)
            store.delete(conversation.id)


@app.command("export")
def export(
    ctx: typer.Context,
    name: NameArg,
    format: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            "-f",
            metavar="md|json",
            help="md or json (default: as -o's suffix says, else md).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to this file (created 0600)."),
    ] = None,
) -> None:
    """Export a conversation as markdown or JSON, to stdout or a file."""
    from cortan.cli import transcript

    with guard(context := get_context(ctx)):
        format = _export_format(format, output)
        conversation, messages = _load(name, context)
        if format is ExportFormat.json:
            data = transcript.to_json(conversation, messages)
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            text = transcript.to_markdown(conversation, messages)
        if output is None:
            _write(text, sanitized=sys.stdout.isatty())
        else:
            _write_private(output, text)


# -- helpers --------------------------------------------------------------------------

SUFFIXES = {".json": ExportFormat.json, ".md": ExportFormat.md, ".markdown": ExportFormat.md}


def _export_format(asked: ExportFormat | None, output: Path | None) -> ExportFormat:
    """The format asked for, else the one ``-o``'s suffix names, else markdown.

    ``-o db.json`` wrote markdown (issue 21); a format the name contradicts is refused
    rather than leave a file whose name lies about it.
    """
    named = SUFFIXES.get(output.suffix.lower()) if output is not None else None
    if asked is not None and named is not None and asked is not named:
        raise UsageError(
            f"{output} names a {named.value} file but --format {asked.value} was given: "
            "change one of them"
        )
    return asked or named or ExportFormat.md


def _list(limit: int) -> list[Conversation]:
    from cortan.cli.continuation import open_store

    store = open_store(create=False, reading=True)
    if store is None:
        return []
    with store:
        return store.list_conversations(limit)


def _require_store(ref: str, *, reading: bool = False) -> SessionStore:
    store = _open_store(ref, reading=reading)
    if store is None:
        raise _not_found(ref)
    return store


def _open_store(ref: str, *, reading: bool = False) -> SessionStore | None:
    """The store, for `ref` (a name from the command line); None when there is none."""
    from cortan.cli.continuation import open_store
    from cortan.core.text import check_argument

    check_argument(ref, "the session name")
    return open_store(create=False, reading=reading)


def _find(store: SessionStore, ref: str) -> Conversation:
    conversation = store.find(ref)
    if conversation is None:
        raise _not_found(ref)
    return conversation


def _not_found(ref: str) -> UsageError:
    what = f"session {ref}" if ref.lstrip("#").isdigit() else f"session named {ref!r}"
    return UsageError(f"there is no {what}: `cortan sessions list` shows them")


def _load(ref: str, context: Context) -> tuple[Conversation, list[StoredMessage]]:
    with _require_store(ref, reading=True) as store:
        conversation = _find(store, ref)
        others = [i for i in store.holding_request_id(ref) if i != conversation.id]
        if others:  # a client sent one X-Request-ID twice: say so, rather than pick in silence
            shown = ", ".join(f"#{i}" for i in others[:5]) + (", …" if len(others) > 5 else "")
            context.diagnostics.notice(
                f"request {ref.strip()} is also in {len(others)} other conversation"
                f"{'s' if len(others) > 1 else ''} ({shown}): this is the newest"
            )
        return conversation, store.messages(conversation.id)


def _confirm(context: Context, conversation: Conversation) -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            f"not deleting {conversation.label} without confirmation: stdin is not a terminal, "
            "so add --yes"
        )
    question = f"Delete {conversation.label} and its {conversation.message_count} messages?"
    if not typer.confirm(question, default=False, err=True):
        context.diagnostics.notice("nothing deleted")
        raise typer.Exit(1)


def _write(text: str, *, sanitized: bool = False) -> None:
    if sanitized:
        from cortan.render.sanitize import sanitize

        text = sanitize(text)
    sys.stdout.write(text)
    sys.stdout.flush()


def _write_private(path: Path, text: str) -> None:
    """Write an export owner-only: a file that was 0644 is 0600 before the text lands.

    A symbolic link at ``path`` is refused rather than followed (it could lead to any
    file of the user's, to be truncated); a FIFO or a device is written as it is. A
    path that cannot be opened is the command line's mistake (exit 2); a write that
    fails (a full disk) is not, and the file it began is removed rather than left
    looking like a whole export (exit 1; the conversation is still in the store).
    """
    from cortan.core.files import PRIVATE_MODE, describe_mode

    check_output_path(path)
    created = not os.path.lexists(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(
                f"{path} is a symbolic link: cortan does not write exports through links; "
                "name the file itself"
            ) from None
        raise UsageError(f"cannot write {path}: {why_unwritable(exc)}") from None
    regular = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            info = os.fstat(fd)
            regular = describe_mode(info.st_mode) is None
            if regular:  # private, then emptied
                if stat.S_IMODE(info.st_mode) != PRIVATE_MODE and info.st_uid == os.getuid():
                    os.fchmod(fd, PRIVATE_MODE)
                os.ftruncate(fd, 0)
            file.write(text)
    except OSError as exc:
        if created and regular:
            path.unlink(missing_ok=True)
        raise CortanError(f"cannot write {path}: {why_unwritable(exc)}") from None
