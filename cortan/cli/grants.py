"""``cortan grants``: the approval gate's standing yeses, and its log of decisions.

Layer: cli (thin: open the store's approval tables, print, exit). The gate itself is
the engine's (:mod:`cortan.engine.approval`); docs/commands.md explains it. Grants
kept "always" live in the store; a session's last as long as its process. The store
is only read here, never created.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from cortan.cli.group import runs_by_default
from cortan.cli.runner import get_context, guard
from cortan.cli.tables import print_rows

if TYPE_CHECKING:
    from cortan.store.approvals import ApprovalStore

T = TypeVar("T")

app = typer.Typer(
    help="List or revoke standing approvals; show the decision log.",
    cls=runs_by_default("list"),
)

JSON_OPTION = typer.Option("--json", help="Print JSON.")


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    """With no subcommand: list the grants."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_grants, ctx=ctx)


@app.command("list")
def list_grants(ctx: typer.Context, json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """The standing yeses: what runs without asking, beyond [approval] in the config."""
    import sys

    from cortan.core.text import make_visible
    from cortan.render.report import dump_json

    context = get_context(ctx)
    with guard(context):
        store = _open(reading=True)
        grants = [] if store is None else _read(store, lambda s: s.list_grants())
        if json_output:
            rows = [{"id": g.id, "kind": g.kind, "name": g.name, "pattern": g.pattern,
                     "created": _iso(g.created)} for g in grants]  # fmt: skip
            sys.stdout.write(dump_json(rows, indent=2) + "\n")
            return
        if not grants:
            context.diagnostics.notice("no standing grants: everything not in [approval] is asked")
            return
        lines = [
            (str(g.id), g.kind, make_visible(g.name),
             make_visible(g.pattern) if g.pattern != "*" else "anything", _iso(g.created))
            for g in grants
        ]  # fmt: skip
        print_rows(("id", "kind", "name", "allows", "since"), lines, context.color_enabled)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    grant_id: Annotated[
        int | None, typer.Argument(help="The grant's id (see `cortan grants`).", min=1)
    ] = None,
    all_grants: Annotated[bool, typer.Option("--all", help="Revoke every grant.")] = False,
) -> None:
    """Take back a standing yes: that action is asked about again."""
    from cortan.core.errors import UsageError

    context = get_context(ctx)
    with guard(context):
        if (grant_id is None) == (not all_grants):
            raise UsageError("name one grant by its id, or give --all")
        store = _open()
        gone = 0 if store is None else _read(store, lambda s: s.revoke(grant_id))
        if grant_id is not None and not gone:
            raise UsageError(f"there is no grant {grant_id}; `cortan grants` lists them")
        context.diagnostics.notice(f"revoked {gone} grant{'s' if gone != 1 else ''}")


@app.command("log")
def log(
    ctx: typer.Context,
    count: Annotated[
        int, typer.Option("-n", "--count", help="How many, newest last.", min=1, max=100_000)
    ] = 20,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Every decision the gate made: what asked to run, who decided, how it ended."""
    import sys

    from cortan.core.text import make_visible
    from cortan.render.report import dump_json

    context = get_context(ctx)
    with guard(context):
        store = _open(reading=True)
        decisions = [] if store is None else _read(store, lambda s: s.recent(count))
        if json_output:
            rows = [{**d._asdict(), "at": _iso(d.at)} for d in decisions]
            sys.stdout.write(dump_json(rows, indent=2) + "\n")
            return
        if not decisions:  # said on stderr, as `grants` says it: stdout stays the log's
            context.diagnostics.notice("no decisions logged yet: the gate logs each one it makes")
            return
        lines: list[tuple[str, ...]] = []
        for d in decisions:
            verdict = "ran" if d.allowed else "refused"
            by = "user" if d.by == "refused" else d.by  # the person said no: "refused (user)"
            status = "" if d.status is None else f" exit {d.status}"
            # the name: which tool (or shell) it was, as `grants list` has it
            lines.append((_iso(d.at), d.kind, make_visible(d.name),
                         f"{verdict} ({by}){status}", make_visible(d.text)))  # fmt: skip
        headers = ("when", "kind", "name", "decision", "what")
        print_rows(headers, lines, context.color_enabled)


def _open(*, reading: bool = False) -> ApprovalStore | None:
    from cortan.config.paths import get_data_dir
    from cortan.store import get_store_path
    from cortan.store.approvals import ApprovalStore

    data_dir = get_data_dir()
    if not os.path.lexists(get_store_path(data_dir)):
        return None
    return ApprovalStore.open(data_dir, reading=reading)


def _read(store: ApprovalStore, read: Callable[[ApprovalStore], T]) -> T:
    with store:
        return read(store)


def _iso(at: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
