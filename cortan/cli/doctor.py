"""``cortan doctor``: one table that says whether cortan can work here, and if not, why.

Rows: the config file, every host of every provider (reachable, version, latency,
circuit breaker, models), the keys of providers that need one, the default model,
the session store and the terminal. The exit code is 1 when a row failed (the
default model cannot answer, the config or the store is broken), with the one
sentence that says why on stderr; warnings (an unused provider that is down, a
missing key nobody needs yet) leave it 0. The checks live in
:mod:`cortan.cli.checks`.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.runner import EXIT_FAILURE, get_context, guard, run_async
from cortan.core.errors import CortanError

if TYPE_CHECKING:
    from cortan.cli.checks import Check
    from cortan.cli.runner import Context
    from cortan.config.settings import Settings

STYLES = {"ok": "green", "warn": "yellow", "fail": "red", "info": "dim"}


def doctor(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the config, providers, keys, session store and terminal."""
    context = get_context(ctx)
    with guard(context):
        checks, problem = run_async(lambda: run_checks(context))
        if json_output:
            report = {
                "ok": problem is None,
                "problem": problem,
                "checks": [as_dict(c) for c in checks],
            }
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
        else:
            print_table(checks, context.color_enabled)
        if problem:
            context.diagnostics.error(problem)
            raise typer.Exit(EXIT_FAILURE)


async def run_checks(context: Context) -> tuple[list[Check], str | None]:
    """Every row, and the sentence for the first failure (None when all is well)."""
    from cortan.cli import checks
    from cortan.config.paths import get_config_file, get_data_dir

    settings, config_row = checks.check_config(get_config_file())
    rows = [config_row]
    if settings is not None:
        rows += await check_models(settings)
    rows.append(checks.check_store(get_data_dir()))
    rows.append(checks.check_terminal(context.color_enabled))
    failed = [row for row in rows if row.status == "fail"]
    defaults = [row for row in failed if row.area == "model"]
    problem = (defaults or failed)[0].detail if failed else None
    return rows, problem


async def check_models(settings: Settings) -> list[Check]:
    """Hosts, keys and the default model, surveyed through the services a prompt uses."""
    from cortan.app import App
    from cortan.cli import checks

    app = App.build(settings)
    try:
        try:
            chain = app.manager.get_chain(None)  # the default model, then its fallbacks
        except CortanError as exc:
            return [checks.Check("model", "default model", "fail", str(exc))]
        reports = await app.survey_hosts()
        default_row = checks.check_default(settings, chain, reports)
        rows = checks.host_rows(app.host_states(), reports)
        return [*rows, *checks.key_rows(settings), default_row]
    finally:
        await app.aclose()


def as_dict(check: Check) -> dict[str, object]:
    return {
        "area": check.area,
        "name": check.name,
        "status": check.status,
        "detail": check.detail,
        **check.data,
    }


def print_table(checks: list[Check], color: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from cortan.cli.tables import print_tables
    from cortan.core.text import make_visible

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("check", "", "status", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        status = Text(check.status, style=STYLES[check.status])
        table.add_row(check.area, make_visible(check.name), status, make_visible(check.detail))
    print_tables([table], color)
