"""``cortan ask``: one question, one answer, shaped for the terminal or for a script."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from cortan.cli.names import complete_session
from cortan.cli.options import (
    AllowSecretsOption,
    AskRoleOption,
    GenerationOption,
    MaxTokensOption,
    ModelOption,
    NoFallbackOption,
    NoLogOption,
    NoThinkOption,
    ThinkOption,
)
from cortan.cli.runner import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Context,
    check_model_option,
    get_context,
    guard,
    run_async,
)
from cortan.core.errors import CortanError, StoreError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from rich.console import Console

    from cortan.app import App
    from cortan.cli.continuation import Continuation
    from cortan.config.settings import Settings
    from cortan.core.events import ChatEnded, ToolResult
    from cortan.core.requests import Attachment, ChatRequest
    from cortan.render.views import AnswerView
    from cortan.store.cache import CacheStore


def ask(
    ctx: typer.Context,
    prompt: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PROMPT...",
            help="The question (several words are joined). A first word '-' reads stdin "
            "(a terminal's too), the words after it saying what to do with it.",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = None,
    no_fallback: NoFallbackOption = False,
    system: Annotated[
        str | None, typer.Option("--system", "-s", metavar="TEXT", help="System prompt.")
    ] = None,
    role: AskRoleOption = None,
    files: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", metavar="PATH", help="Attach a text file (repeatable)."),
    ] = None,
    no_stdin: Annotated[
        bool, typer.Option("--no-stdin", help="Never read stdin (for loops and cron).")
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer once, complete.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the answer and usage.")
    ] = False,
    raw: Annotated[
        bool,
        typer.Option("--raw", help="Pass the model's bytes through untouched (not on a terminal)."),
    ] = False,
    continue_last: Annotated[
        bool, typer.Option("--continue", "-c", help="Continue the most recent conversation.")
    ] = False,
    session: Annotated[
        str | None,
        typer.Option(
            "--session",
            metavar="NAME",
            help="Continue the conversation NAME (or id, as --json reports it), or start NAME.",
            autocompletion=complete_session,
        ),
    ] = None,
    fork: Annotated[
        bool,
        typer.Option(
            "--fork", help="With -c or --session: go on in a copy, leaving the original as it was."
        ),
    ] = False,
    no_log: NoLogOption = False,
    allow_secrets: AllowSecretsOption = False,
    attach: Annotated[
        list[str] | None,
        typer.Option(
            "--attach", "-a", metavar="PATH", help="Attach an image or a text file (repeatable)."
        ),
    ] = None,
    think: ThinkOption = None,
    no_think: NoThinkOption = False,
    show_thinking: Annotated[
        bool | None,
        typer.Option(
            "--show-thinking/--hide-thinking",
            help="Show a model's reasoning dim on stderr (never on stdout).",
            show_default=False,
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            metavar="SCHEMA",
            help="Answer as JSON filling a schema: a .json file, JSON, or 'name str, age int'.",
        ),
    ] = None,
    options: GenerationOption = None,
    max_tokens: MaxTokensOption = None,
    extract: Annotated[
        bool,
        typer.Option(
            "--extract",
            "-x",
            help="Print only the first fenced code block (the whole answer if it has none).",
        ),
    ] = False,
    extract_last: Annotated[
        bool,
        typer.Option(
            "--extract-last", "--xl", help="Print only the last fenced code block, likewise."
        ),
    ] = False,
    cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache",
            help="Answer from the response cache when it can, and keep the answer.",
        ),
    ] = None,
    tools: Annotated[
        bool | None,
        typer.Option(
            "--tools/--no-tools",
            help="Let the model call tools (read files, run commands, MCP servers); "
            "each call is asked about on the terminal.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Ask one question and print the answer. Piped text is sent along with it."""
    from cortan.cli.continuation import plan_continuation

    context = get_context(ctx)
    with guard(context):
        with _refusals_as_json(json_output):
            check_model_option(model)
            from cortan.cli.generation import apply_generation, make_generation

            generation = make_generation(think, no_think, schema, options or [], max_tokens)
            settings = context.load_settings()
            plan = plan_continuation(
                settings, continue_last=continue_last, session=session, no_log=no_log, fork=fork
            )
            ctx.call_on_close(plan.close)
            if plan.unstored is not None:
                context.diagnostics.warning(plan.unstored)
            # Before stdin: a bad path fails at once.
            attached = _read_files(settings, files or [])
            attached += _read_files(settings, attach or [], True)
            request = _make_request(
                settings, prompt or [], model, system, no_stdin, context, has_files=bool(attached)
            )
            request = _with_role_and_files(settings, request, role, attached)
            request = request._replace(
                allow_fallback=not no_fallback,
                allow_secrets=allow_secrets,
                cache=cache,
                tools=settings.tools.enabled if tools is None else tools,
            )
            request = apply_generation(plan.apply(request), generation)
            show = settings.show_thinking if show_thinking is None else show_thinking
            output = Output(no_stream, json_output, raw, show, _extract_mode(extract, extract_last))
            if output.extract and schema is not None:
                raise UsageError("--schema prints a JSON document: leave out --extract")
        ended = run_async(lambda: _run(settings, request, context, output, plan), hangups=True)
        raise typer.Exit(exit_code(ended, plan.log_required))


@contextlib.contextmanager
def _refusals_as_json(json_output: bool) -> Iterator[None]:
    """With ``--json``, a request refused before it was sent (a missing file, a bad
    option, no conversation to continue) still prints its one object on stdout, as a
    failed answer does: a script reads ``error.kind`` either way. The sentence and the
    exit code stay the guard's."""
    try:
        yield
    except CortanError as exc:
        if json_output:
            from cortan.core.events import ChatFailed
            from cortan.render.report import write_report

            refused = ChatFailed(0, exc.kind, str(exc), exc.exit_code)
            with contextlib.suppress(OSError):  # stdout gone: the sentence still says it
                write_report(sys.stdout, refused, {"conversation_id": None})
        raise


def exit_code(ended: ChatEnded, log_required: bool = False) -> int:
    """The stable exit code; an answer that came but could not be saved is 0 unless the
    user asked for the log (``-c``, ``--session``)."""
    from cortan.core.events import ChatCancelled, ChatFailed

    if isinstance(ended, ChatCancelled):
        return EXIT_INTERRUPTED
    if is_unsaved_answer(ended) and not log_required:
        return EXIT_OK
    if isinstance(ended, ChatFailed):
        return ended.exit_code
    return EXIT_OK


def _make_request(
    settings: Settings,
    words: list[str],
    model: str | None,
    system: str | None,
    no_stdin: bool,
    context: Context,
    has_files: bool = False,
) -> ChatRequest:
    from cortan.core.requests import ChatRequest

    # A first word "-" reads stdin (even a terminal's); the words after it are the
    # instruction, as with piped text. A "-" later on is a word (`what is 5 - 3`).
    dash = words[:1] == ["-"]
    prompt = " ".join(words[1:] if dash else words)
    has_prompt = bool(prompt) or has_files  # files say what to do as a prompt would: no hang
    attachments = () if no_stdin else _stdin_attachments(settings, has_prompt, dash, context)
    return ChatRequest(1, prompt, attachments, model, system)


def _read_files(settings: Settings, paths: list[str], images: bool = False) -> list[Attachment]:
    """Each ``-f`` file (``-a``: or image) as an attachment; the text within max_input_bytes."""
    from pathlib import Path

    from cortan.engine.attachments import read_attachment

    image_limit = settings.max_image_bytes if images else None
    attached: list[Attachment] = []
    for path in paths:
        used = sum(len(a.data) for a in attached if not a.label.startswith("Image "))
        attached.append(
            read_attachment(
                Path(path),
                max_bytes=settings.max_input_bytes,
                used=used,
                max_image_bytes=image_limit,
            )
        )
    return attached


def _with_role_and_files(
    settings: Settings, request: ChatRequest, role: str | None, files: list[Attachment]
) -> ChatRequest:
    """``--role`` fills what ``-s`` and ``-m`` left open; files follow piped input."""
    from cortan.config.roles import get_role

    attachments = (*request.attachments, *files)
    if role is None:
        return request._replace(attachments=attachments)
    found = get_role(settings, role)
    return request._replace(
        attachments=attachments,
        system=found.system if request.system is None else request.system,
        model=request.model or found.model,
        options=(*request.options, *found.options),
    )


def _stdin_attachments(
    settings: Settings, has_prompt: bool, dash: bool, context: Context
) -> tuple[Attachment, ...]:
    from cortan.cli.stdin import get_stdin, read_stdin, should_read
    from cortan.core.requests import Attachment

    stream = get_stdin()
    if not should_read(stream, has_prompt=has_prompt, dash=dash):
        return ()
    if dash and stream.isatty():
        context.diagnostics.notice("type the input; end with Ctrl-D on a line of its own")
    timeout = settings.stdin_timeout if has_prompt and not dash else None  # "-" asked for it
    result = read_stdin(
        stream,
        max_bytes=settings.max_input_bytes,
        timeout=timeout,
        max_image_bytes=settings.max_image_bytes,  # an image may come on stdin too
    )
    if result.note:
        context.diagnostics.warning(result.note)
    return (Attachment("Input from stdin", result.data),) if result.data else ()


class Output(NamedTuple):
    """How the answer reaches the user: the output flags of one ``ask``."""

    no_stream: bool = False
    json: bool = False
    raw: bool = False
    show_thinking: bool = True
    extract: str | None = None  # "first" or "last" fenced code block only (-x, --xl)


def _extract_mode(first: bool, last: bool) -> str | None:
    if first and last:
        raise UsageError("use either --extract or --extract-last, not both")
    return "last" if last else "first" if first else None


async def _run(
    settings: Settings,
    request: ChatRequest,
    context: Context,
    output: Output,
    plan: Continuation | None = None,
) -> ChatEnded:
    from cortan.app import App

    app = App.build(settings)
    recorder = plan.attach(app) if plan is not None else None

    calls: list[ToolResult] = []

    def stored() -> dict[str, object]:  # read as the answer ends: a new one has its id by then
        extra: dict[str, object] = {
            "conversation_id": recorder.conversation_id if recorder else None
        }
        if request.tools:
            extra["tool_calls"] = [_call_to_json(result) for result in calls]
        return extra

    view = _make_view(settings, context, output, schema=request.schema is not None, extra=stored)
    app.attach_view(view)
    # Named, among other tools' lines on stderr: "cortan: 2 earlier turns left out …".
    app.attach_notices(lambda text: context.diagnostics.notice(f"cortan: {text}"))
    cache = _open_cache(settings, request, context)
    if cache is not None:
        app.use_cache(cache)
    if request.tools:
        request = _use_tools(app, settings, context, request, calls)
    from cortan.render.echo import quiet_typing

    try:
        with quiet_typing():  # Ctrl-C stops the answer without drawing "^C" in it, and
            ended = await app.ask(request)  # keys typed ahead are the shell's, not in it
    finally:
        await app.aclose()
        if cache is not None:
            cache.close()
    report_ending(context, ended, plan is not None and plan.log_required)
    return ended


def _use_tools(
    app: App,
    settings: Settings,
    context: Context,
    request: ChatRequest,
    calls: list[ToolResult],
) -> ChatRequest:
    """Tools on: the gate (its log in the store), the terminal to ask on, a line per call
    (and each outcome kept in ``calls`` for ``--json``)."""
    from cortan.app import make_gate
    from cortan.config.paths import get_data_dir
    from cortan.render.asking import open_terminal_asker

    app.use_tools(make_gate(settings, get_data_dir()))
    app.attach_tool_lines(lambda text: context.diagnostics.notice(f"cortan: {text}"), calls)
    return request._replace(ask=open_terminal_asker())


def _call_to_json(result: ToolResult) -> dict[str, object]:
    call = result.call
    return {
        "name": call.name,
        "arguments": call.arguments,
        "status": result.status,
        "decided_by": result.decided_by,
        "output": result.output,
    }


def _open_cache(settings: Settings, request: ChatRequest, context: Context) -> CacheStore | None:
    """The response cache, when this request may use it (``--cache``, ``cache.models``).

    The cache saves a request, it is never needed for one: a store that cannot be
    opened (a full disk, a read-only folder, another process holding it) is told in
    a dim line, as a cache that cannot be read or written is, and the model is asked.
    """
    if request.cache is False or (request.cache is None and not settings.cache.models):
        return None
    from cortan.config.paths import get_data_dir
    from cortan.store.cache import CacheStore

    limits = settings.cache
    try:
        return CacheStore.open(
            get_data_dir(), max_bytes=limits.max_bytes, max_age=limits.max_age_days * 86400.0
        )
    except StoreError as exc:
        context.diagnostics.notice(f"cortan: the response cache cannot be opened: {exc}")
        return None


def report_ending(context: Context, ended: ChatEnded, log_required: bool = False) -> None:
    """A failure's one sentence on stderr; a reader who left (``| head``) hears nothing.

    An answer from the response cache says so, dim.
    """
    from cortan.core.events import ChatFailed, ChatFinished
    from cortan.engine.guard import HINT

    if isinstance(ended, ChatFinished) and ended.cached:
        context.diagnostics.notice("(answer from the response cache; --no-cache asks the model)")
    if not isinstance(ended, ChatFailed) or ended.kind == "output_closed":
        return
    if is_unsaved_answer(ended) and not log_required:
        context.diagnostics.warning(ended.message)  # the answer came; the log is a bonus
        return
    hint = HINT if ended.kind == "secret" and not ended.message.endswith(HINT) else ""
    context.diagnostics.error(ended.message + hint)


def is_unsaved_answer(ended: ChatEnded) -> bool:
    """The answer arrived whole, and only storing it failed."""
    from cortan.core.events import ChatFailed

    return isinstance(ended, ChatFailed) and ended.kind == "store"


def _make_view(
    settings: Settings,
    context: Context,
    output: Output,
    *,
    schema: bool = False,
    extra: Callable[[], Mapping[str, object]] | None = None,
) -> AnswerView:
    """The view for this stdout; thinking only ever goes to a terminal's stderr."""
    from cortan.render import views

    if output.json:
        return views.JsonView(sys.stdout, extra, extract=output.extract)
    terminal = sys.stdout.isatty()
    if output.raw and terminal and not schema:
        context.diagnostics.warning("--raw is ignored on a terminal: escape codes stay neutralised")
    thinking = _thinking_console(settings, context) if output.show_thinking else None
    view: AnswerView
    if schema:
        view = views.DocumentView(sys.stdout, sys.stderr)  # one JSON document, once it fits
    elif output.extract:
        raw = output.raw and not terminal
        view = views.ExtractView(sys.stdout, last=output.extract == "last", raw=raw)
    elif not terminal and output.no_stream:
        view = views.BufferedView(None, sys.stdout, code_theme=settings.code_theme, raw=output.raw)
    elif not terminal:
        view = views.PlainView(sys.stdout, raw=output.raw)
    elif output.no_stream:
        console = context.console(settings)
        view = views.BufferedView(console, sys.stdout, code_theme=settings.code_theme)
    else:
        # The consoles are made once the request is on its way: importing rich is not on
        # the path to the request (issue 21, the first visible byte), and an answer's
        # first plain words that come before rich is loaded are written as they are
        # (render/lead.py).
        from cortan.render.lead import writes_live
        from cortan.render.terminal import MarkdownView

        return MarkdownView(
            lambda: context.console(settings),
            code_theme=settings.code_theme,
            thinking=thinking,
            lead=sys.stdout if writes_live(sys.stdout) else None,
        )
    return view if thinking is None else views.ThinkingAside(view, thinking)


def _thinking_console(settings: Settings, context: Context) -> Callable[[], Console] | None:
    """stderr, dim, when it is a terminal: where ``ask`` shows a model's reasoning."""
    if not sys.stderr.isatty():
        return None

    return lambda: context.console(settings, sys.stderr)
