"""``cortan ask``: one question, one answer, shaped for the terminal or for a script."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cortan.cli.runner import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Context,
    check_model_option,
    get_context,
    guard,
    run_async,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from rich.console import Console

    from cortan.cli.continuation import Continuation
    from cortan.config.settings import Settings
    from cortan.core.events import ChatEnded
    from cortan.core.requests import Attachment, ChatRequest
    from cortan.render.views import AnswerView


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
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", metavar="MODEL", help="provider:model, an alias, or a bare model name."
        ),
    ] = None,
    no_fallback: Annotated[
        bool, typer.Option("--no-fallback", help="Only the model asked for: no fallback chain.")
    ] = False,
    system: Annotated[
        str | None, typer.Option("--system", "-s", metavar="TEXT", help="System prompt.")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option("--role", metavar="NAME", help="A named role (`cortan roles` lists them)."),
    ] = None,
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
        ),
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Keep this exchange out of the session store.")
    ] = False,
    allow_secrets: Annotated[
        bool,
        typer.Option(
            "--allow-secrets", help="Send to a remote provider even what looks like a secret."
        ),
    ] = False,
) -> None:
    """Ask one question and print the answer. Piped text is sent along with it."""
    from cortan.cli.continuation import plan_continuation

    context = get_context(ctx)
    with guard(context):
        check_model_option(model)
        settings = context.load_settings()
        plan = plan_continuation(
            settings, continue_last=continue_last, session=session, no_log=no_log
        )
        ctx.call_on_close(plan.close)
        attached = _read_files(settings, files or [])  # before stdin: a bad path fails at once
        request = _make_request(
            settings, prompt or [], model, system, no_stdin, context, has_files=bool(attached)
        )
        request = _with_role_and_files(settings, request, role, attached)
        request = request._replace(allow_fallback=not no_fallback, allow_secrets=allow_secrets)
        request = plan.apply(request)
        ended = run_async(
            lambda: _run(settings, request, context, no_stream, json_output, raw, plan)
        )
        raise typer.Exit(exit_code(ended))


def exit_code(ended: ChatEnded) -> int:
    from cortan.core.events import ChatCancelled, ChatFailed

    if isinstance(ended, ChatCancelled):
        return EXIT_INTERRUPTED
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


def _read_files(settings: Settings, paths: list[str]) -> list[Attachment]:
    """Each ``-f`` file as an attachment; together they stay within max_input_bytes."""
    from pathlib import Path

    from cortan.engine.attachments import read_attachment

    attached: list[Attachment] = []
    for path in paths:
        used = sum(len(a.data) for a in attached)
        attached.append(read_attachment(Path(path), max_bytes=settings.max_input_bytes, used=used))
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
    result = read_stdin(stream, max_bytes=settings.max_input_bytes, timeout=timeout)
    if result.note:
        context.diagnostics.warning(result.note)
    return (Attachment("Input from stdin", result.data),) if result.data else ()


async def _run(
    settings: Settings,
    request: ChatRequest,
    context: Context,
    no_stream: bool,
    json_output: bool,
    raw: bool,
    plan: Continuation | None = None,
) -> ChatEnded:
    from cortan.app import App

    app = App.build(settings)
    recorder = plan.attach(app) if plan is not None else None

    def stored() -> dict[str, object]:  # read as the answer ends: a new one has its id by then
        return {"conversation_id": recorder.conversation_id if recorder else None}

    app.attach_view(_make_view(settings, context, no_stream, json_output, raw, stored))
    # Named, among other tools' lines on stderr: "cortan: 2 earlier turns left out …".
    app.attach_notices(lambda text: context.diagnostics.notice(f"cortan: {text}"))
    try:
        ended = await app.ask(request)
    finally:
        await app.aclose()
    report_ending(context, ended)
    return ended


def report_ending(context: Context, ended: ChatEnded) -> None:
    """A failure's one sentence on stderr; a reader who left (``| head``) hears nothing."""
    from cortan.core.events import ChatFailed
    from cortan.engine.guard import HINT

    if not isinstance(ended, ChatFailed) or ended.kind == "output_closed":
        return
    hint = HINT if ended.kind == "secret" and not ended.message.endswith(HINT) else ""
    context.diagnostics.error(ended.message + hint)


def _make_view(
    settings: Settings,
    context: Context,
    no_stream: bool,
    json_output: bool,
    raw: bool,
    extra: Callable[[], Mapping[str, object]] | None = None,
) -> AnswerView:
    from cortan.render import views

    if json_output:
        return views.JsonView(sys.stdout, extra)
    terminal = sys.stdout.isatty()
    if raw and terminal:
        context.diagnostics.warning("--raw is ignored on a terminal: escape codes stay neutralised")
    if not terminal:
        if no_stream:
            return views.BufferedView(None, sys.stdout, code_theme=settings.code_theme, raw=raw)
        return views.PlainView(sys.stdout, raw=raw)
    console = make_console(settings, context)
    if no_stream:
        return views.BufferedView(console, sys.stdout, code_theme=settings.code_theme)
    return views.MarkdownView(console, code_theme=settings.code_theme)


def make_console(settings: Settings, context: Context) -> Console:
    """The stdout console for rendered answers; colour off by setting, flag or NO_COLOR."""
    from rich.console import Console

    color = settings.color and context.color_enabled
    return Console(no_color=not color, highlight=False)
