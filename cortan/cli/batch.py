"""``cortan batch``: many prompts from a file, a folder or stdin, answers as JSON lines.

Layer: cli (thin: read the flags, open the store, wire through ``cortan.app``, run,
print the summary, exit with the job's code). The work is :mod:`cortan.batch`'s;
docs/batch.md says what every flag does.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

import typer

from cortan.cli.names import complete_batch_format, complete_model
from cortan.cli.options import AllowSecretsOption, NoFallbackOption, RoleOption
from cortan.cli.runner import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Context,
    check_model_option,
    check_output_path,
    get_context,
    guard,
    run_async,
)
from cortan.core.errors import UsageError

if TYPE_CHECKING:
    from cortan.app import App
    from cortan.batch.inputs import FileId, InputSpec
    from cortan.batch.items import RequestSpec
    from cortan.batch.progress import ProgressView
    from cortan.batch.runner import Outcome
    from cortan.config.settings import Settings

EXIT_TERMINATED = 128 + 15  # SIGTERM: stopped cleanly, as Ctrl-C stops it
SECONDS_PER_DAY = 86400.0


def batch(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="A .jsonl, .csv, .tsv or text file, a folder, or '-' for stdin (the default).",
        ),
    ] = "-",
    input_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-F",
            metavar="FORMAT",
            help="jsonl, csv, tsv, lines or files.",
            autocompletion=complete_batch_format,
        ),
    ] = None,
    field: Annotated[
        str | None,
        typer.Option(
            "--field",
            metavar="NAME",
            help="The field or column holding each prompt (JSON lines: prompt).",
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template", "-t", metavar="TEXT", help="Each prompt from the item's {fields}."
        ),
    ] = None,
    template_file: Annotated[
        Path | None,
        typer.Option("--template-file", metavar="PATH", help="The template, read from a file."),
    ] = None,
    instruction: Annotated[
        str | None,
        typer.Option(
            "--prompt", "-p", metavar="TEXT", help="An instruction sent with each item as data."
        ),
    ] = None,
    id_field: Annotated[
        str,
        typer.Option("--id-field", metavar="NAME", help="The field or column naming each item."),
    ] = "id",
    glob: Annotated[
        str | None,
        typer.Option("--glob", metavar="PATTERN", help="A folder: only files matching this."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="provider:model, an alias, or a bare model name.",
            autocompletion=complete_model,
        ),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", "-s", metavar="TEXT", help="System prompt.")
    ] = None,
    role: RoleOption = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            metavar="KEY=VALUE",
            help="A generation option, as ask's -o: temperature=0 (repeat).",
        ),
    ] = None,
    no_fallback: NoFallbackOption = False,
    allow_secrets: AllowSecretsOption = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the JSON lines here."),
    ] = None,
    unordered: Annotated[
        bool, typer.Option("--unordered", help="Write each line as its item ends, not in order.")
    ] = False,
    cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache", help="Answer from the response cache, and keep new answers."
        ),
    ] = None,
    log: Annotated[
        bool, typer.Option("--log", help="Also store each exchange as a conversation.")
    ] = False,
    job_name: Annotated[
        str | None,
        typer.Option("--job", metavar="NAME", help="Name the job (to resume it from stdin)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Only resume: fail if there is no job to resume.")
    ] = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="Forget what the job did and run every item.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, metavar="N", help="Run the first N items.")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-j", min=1, max=4096, metavar="N", help="Requests at once."),
    ] = None,
    max_failures: Annotated[
        int | None,
        typer.Option(
            "--max-failures", min=0, metavar="N", help="Stop after N failures in a row (0: never)."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress; failures and the summary only.")
    ] = False,
) -> None:
    """Answer many prompts: one JSON line per item, in input order, resumable."""
    from cortan.batch.inputs import InputSpec, check_input, detect_format
    from cortan.batch.items import RequestSpec
    from cortan.batch.template import Template
    from cortan.core.options import parse_options

    context = get_context(ctx)
    with guard(context):
        check_model_option(model)
        if resume and restart:
            raise UsageError("use either --resume or --restart, not both")
        settings = context.load_settings()
        fmt = detect_format(source, input_format)
        parsed = (
            Template(_read_template(template, template_file))
            if (template is not None or template_file is not None)
            else None
        )
        _check_shape(fmt, parsed, field, instruction)
        columns = parsed.fields if parsed else (field,) if field else ()
        input_spec = InputSpec(source, fmt, field or "prompt", id_field, glob, columns)
        check_input(input_spec)
        spec = RequestSpec(
            fmt, parsed, field, instruction, model, system, parse_options(option or []),
            allow_fallback=not no_fallback, allow_secrets=allow_secrets, cache=cache,
        )  # fmt: skip
        spec = _with_role(settings, spec, role)
        if source == "-" and sys.stdin.isatty():
            context.diagnostics.notice("batch: reading items from the terminal; Ctrl-D ends them")
        counted = _check_ids(input_spec, settings.max_input_bytes)  # before -o is emptied
        sink = _open_output(output, source)
        leave_out = _output_in_folder(context, input_spec, sink, output)
        where = "stdin" if source == "-" else os.path.realpath(source)  # the job's input
        if output is not None:
            ctx.call_on_close(lambda: _close_quietly(sink))
        failures = settings.batch.max_failures if max_failures is None else max_failures
        try:
            outcome = run_async(
                lambda: _run(
                    context, settings, input_spec, spec, sink, source=where,
                    name=job_name, resume=resume, restart=restart, log=log, limit=limit,
                    concurrency=concurrency, quiet=quiet, ordered=not unordered,
                    max_failures=failures, output=str(output) if output else None,
                    leave_out=leave_out, counted=counted,
                )
            )  # fmt: skip
        except KeyboardInterrupt:
            # A second Ctrl-C while the first one's clean stop was under way: no
            # summary then, but every item that ended is in the store.
            context.diagnostics.notice(
                "batch stopped at once (Ctrl-C again): every item that ended is kept; "
                "run the same command again to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        raise typer.Exit(outcome.exit_code)


MAX_TEMPLATE_BYTES = 1 << 20


def _read_template(text: str | None, path: Path | None) -> str:
    if text is not None and path is not None:
        raise UsageError("use either --template or --template-file, not both")
    if path is None:
        assert text is not None
        return text
    from cortan.core.errors import why_unreadable
    from cortan.core.files import FileRefused, read_small_file

    try:  # bounded: `--template-file /dev/zero` read until memory ran out
        return read_small_file(path, MAX_TEMPLATE_BYTES, pipes=True).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = why_unreadable(exc)
    except FileRefused as exc:
        reason = f"it {exc}"
    raise UsageError(f"cannot read the template {path}: {reason}")


def _check_shape(fmt: str, template: object, field: str | None, instruction: str | None) -> None:
    if template is not None and (field is not None or instruction is not None):
        raise UsageError("a template makes the whole prompt: leave out --field and --prompt")
    if fmt in ("csv", "tsv") and template is None and field is None:
        raise UsageError("a CSV needs --template (e.g. 'Classify: {text}') or --field COLUMN")
    if fmt in ("lines", "files") and field is not None:
        raise UsageError(f"--field is for JSON lines and CSV, not {fmt}")


def _with_role(settings: Settings, spec: RequestSpec, role: str | None) -> RequestSpec:
    if role is None:
        return spec
    from cortan.config.roles import get_role

    found = get_role(settings, role)
    return spec._replace(
        system=spec.system if spec.system is not None else found.system,
        model=spec.model or found.model,
        options=(*found.options, *spec.options),
    )


class _Stdout:
    """stdout as it is at each write: rich's live bar swaps in a proxy while it draws
    (on a terminal), which prints the lines above the bar instead of through it."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def fileno(self) -> int:
        return sys.stdout.fileno()


def _close_quietly(sink: TextIO) -> None:
    """Close ``-o``'s file. Every line is flushed as it is written, so a close that
    fails only retries a write whose failure the job has already reported."""
    with contextlib.suppress(OSError):
        sink.close()


def _same_file(output: Path, source: Path) -> bool:
    """Whether ``output`` is ``source`` by any name: a link, or a hard link, which opening
    it for writing would empty before a line of it was read."""
    try:
        return output.samefile(source)
    except OSError:  # one of them is not there (yet): not the same file
        return False


def _stdout_is_input(source: str) -> bool:
    """Whether stdout is the input file: ``>> in.txt`` made the job read its own answers
    as items, growing without end; ``> in.txt`` emptied it before cortan began."""
    if source == "-":
        return False
    try:
        out, given = os.fstat(sys.stdout.fileno()), os.stat(source)
    except (OSError, ValueError):  # no stdout to compare, or no such file (said later)
        return False
    return stat.S_ISREG(out.st_mode) and (out.st_dev, out.st_ino) == (given.st_dev, given.st_ino)


def _open_output(output: Path | None, source: str) -> TextIO:
    if output is None:
        if _stdout_is_input(source):
            raise UsageError(f"stdout is the input {source} itself: write the output elsewhere")
        return cast("TextIO", _Stdout())
    if source != "-" and _same_file(output, Path(source)):
        raise UsageError(f"-o {output} is the input itself: write the output elsewhere")
    check_output_path(output)
    try:
        return output.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        from cortan.core.errors import why_unwritable

        raise UsageError(f"cannot write {output}: {why_unwritable(exc)}") from None


def _check_ids(spec: InputSpec, max_bytes: int) -> int | None:
    """A file's items, each id checked unique before anything is sent: how many there are
    (the counting pass is then not needed). Stdin is checked as it is read."""
    from cortan.batch.inputs import ID_FORMATS, STDIN, check_ids, read_records

    if spec.path == STDIN or spec.format not in ID_FORMATS:
        return None
    return sum(1 for _ in check_ids(read_records(spec, max_bytes=max_bytes)))


def _output_in_folder(
    context: Context, spec: InputSpec, sink: TextIO, output: Path | None
) -> FileId | None:
    """The output's identity, for a folder's listing to leave out: written into the
    folder (``-o notes/out.jsonl``, ``> notes/out.jsonl``), it was read as an item, half
    written, and on a resume with the last run's answers. Said once, when it is there."""
    if spec.format != "files":
        return None
    try:
        found = os.fstat(sink.fileno())
    except (OSError, ValueError):  # no stdout to compare
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    named = output if output is not None else _stdout_path()
    if named is not None:
        from cortan.batch.inputs import is_listed

        root, where = Path(spec.path).resolve(), named.parent.resolve() / named.name
        if is_listed(root, where, spec.glob):
            name = where.relative_to(root).as_posix()
            context.diagnostics.notice(
                f"batch: the folder's file {name} is the output: it is not one of the items"
            )
    return found.st_dev, found.st_ino


def _stdout_path() -> Path | None:
    """The file stdout was sent to (``> notes/out.jsonl``), where the system says."""
    try:
        return Path(os.readlink("/proc/self/fd/1"))
    except OSError:  # not Linux, or no stdout: the output is still left out, unsaid
        return None


async def _run(
    context: Context,
    settings: Settings,
    input_spec: InputSpec,
    spec: RequestSpec,
    sink: TextIO,
    *,
    source: str,
    name: str | None,
    resume: bool,
    restart: bool,
    log: bool,
    quiet: bool,
    output: str | None,
    concurrency: int | None,
    leave_out: FileId | None,
    counted: int | None,
    **options: Any,
) -> Outcome:
    from cortan.app import App, make_batch
    from cortan.batch.inputs import ID_FORMATS, check_ids, count_records, read_records
    from cortan.batch.job import make_job_key, open_job
    from cortan.config.paths import get_data_dir
    from cortan.store.jobs import JobStore

    key = f"name:{name}" if name else make_job_key(source, input_spec._replace(path=source), spec)
    data_dir = get_data_dir()
    max_bytes = settings.max_input_bytes
    with contextlib.ExitStack() as stack:
        jobs = stack.enter_context(JobStore.open(data_dir))
        job, earlier = stack.enter_context(
            open_job(jobs, key, name=name, source=source, resume=resume, restart=restart)
        )
        if earlier is not None:
            failed = f", {earlier.failed:,} failed (asked again)" if earlier.failed else ""
            items = "item" if earlier.done == 1 else "items"
            context.diagnostics.notice(
                f"batch: resuming: {earlier.done:,} {items} answered by an earlier run{failed}"
            )
        app = App.build(settings, concurrent=True)  # aiohttp: many requests at once
        _attach_stores(stack, app, settings, spec, data_dir, log=log)
        count = None if input_spec.path == "-" else (
            (lambda: counted) if counted is not None
            else lambda: count_records(input_spec, max_bytes=max_bytes, leave_out=leave_out)
        )  # fmt: skip
        live = not quiet and sys.stderr.isatty()
        records = read_records(input_spec, max_bytes=max_bytes, leave_out=leave_out)
        if input_spec.path == "-" and input_spec.format in ID_FORMATS:
            records = check_ids(records)  # a file's were checked before the job opened
        runner = make_batch(
            app, jobs, job, records, spec, sink,
            _make_progress(settings, context, quiet=quiet, live=live),
            tick=1.0 if live else settings.batch.progress_interval,
            count_total=count, workers=concurrency, **options,
        )  # fmt: skip
        try:
            with _stopped_by_sigterm() as terminated:
                outcome = await runner.run()
        finally:
            await app.aclose()
    if terminated():
        outcome = outcome._replace(exit_code=EXIT_TERMINATED)
    if not outcome.quiet:
        _report(context, outcome, output)
    return outcome


def _attach_stores(
    stack: contextlib.ExitStack, app: App, settings: Settings, spec: RequestSpec,
    data_dir: Path, *, log: bool,
) -> None:  # fmt: skip
    """The response cache (``--cache``, ``cache.models``) and the recorder (``--log``)."""
    if spec.cache or (spec.cache is None and settings.cache.models):
        from cortan.store.cache import CacheStore

        limits = settings.cache
        cache = CacheStore.open(
            data_dir, max_bytes=limits.max_bytes, max_age=limits.max_age_days * SECONDS_PER_DAY
        )
        stack.callback(cache.close)
        app.use_cache(cache)
    if log:
        from cortan.store.sessions import SessionStore

        store = stack.enter_context(SessionStore.open(data_dir))
        app.attach_store(store, each_request_new=True)


def _make_progress(
    settings: Settings, context: Context, *, quiet: bool, live: bool
) -> ProgressView:
    from cortan.batch.progress import PlainProgress, QuietProgress, RichProgress

    if quiet:
        return QuietProgress(sys.stderr)
    if not live:
        return PlainProgress(sys.stderr)
    return RichProgress(context.console(settings, sys.stderr))


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[Callable[[], bool]]:
    """SIGTERM stops the job as Ctrl-C does (cleanly, with a summary); says if it came."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    came: list[bool] = []

    def stop() -> None:
        came.append(True)
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        yield lambda: bool(came)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _report(context: Context, outcome: Outcome, output: str | None) -> None:
    """The summary on stderr; a job that could not go on says why in one error line."""
    import time

    from cortan.batch.progress import summarise
    from cortan.batch.runner import EXIT_INTERRUPTED

    diagnostics = context.diagnostics
    if outcome.exit_code == EXIT_USAGE and not outcome.tally.ended:
        diagnostics.error(outcome.stopped or "the command cannot run")
        return
    for line in summarise(
        outcome.tally, time.monotonic(), stopped=outcome.stopped is not None, output=output
    ):
        diagnostics.notice(line)
    if outcome.stopped is None:
        return
    again = "run the same command again to resume"
    if outcome.exit_code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        diagnostics.notice(f"{outcome.stopped}: {again}")
    elif outcome.exit_code == EXIT_USAGE:  # the command itself must change first
        diagnostics.error(outcome.stopped)
    else:
        diagnostics.error(f"{outcome.stopped}; {again}")
