"""``cortan serve``: the local gateway (cortan/serve), started in one command.

Thin: settings and the token, the warnings a user must see, then the
composition root wires the gateway and ``cortan.serve.server`` runs it until
Ctrl-C or SIGTERM. docs/serve.md shows how to point an editor or a script at it.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Annotated, TextIO, cast

import typer

from cortan.cli.runner import Context, get_context, guard, run_async
from cortan.core.errors import UsageError

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.serve.server import Listener

WHERE = {
    "env": "CORTAN_SERVE_TOKEN",
    "command": "serve.token_cmd",
    "keyring": "the OS keyring; `cortan serve --print-token` shows it",
}


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", metavar="ADDRESS", help="Address to listen on (default 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", "-p", metavar="PORT", help="Port (default 11435; 0 picks a free one)."
        ),
    ] = None,
    print_token: Annotated[
        bool, typer.Option("--print-token", help="Print the token clients send, and exit.")
    ] = False,
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Replace the keyring's token with a new one.")
    ] = False,
    no_token: Annotated[
        bool,
        typer.Option(
            "--no-token", help="Serve without a token (loopback only: any local program)."
        ),
    ] = False,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Keep the gateway's requests out of the store.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per request.")] = False,
) -> None:
    """Serve cortan's models to editors and scripts: OpenAI and Ollama APIs, WebSocket."""
    context = get_context(ctx)
    with guard(context):
        settings = context.load_settings()
        if print_token or new_token:
            _show_token(settings, new_token)
            return
        address = host if host is not None else settings.serve.host
        beyond = not _is_loopback(address)
        if no_token and beyond:
            raise UsageError(
                f"--no-token is for loopback only: on {address} anyone who can reach this "
                "machine could use your models and keys"
            )
        token = None if no_token else _get_token(settings)
        _hand_off_stderr(context)
        from cortan.serve.server import event_loop

        code = run_async(
            lambda: _run(context, settings, address, port, token, beyond, no_log, quiet),
            loop_factory=event_loop(),
        )
        raise typer.Exit(code)


def _hand_off_stderr(context: Context) -> None:
    """Let a thread write stderr, so that a pipe nobody reads cannot stop the gateway
    (cortan/serve/stderr.py says how it did)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (an embedding program's)
        return
    from cortan.serve.stderr import StderrHandOff

    context.replace_stderr(cast("TextIO", StderrHandOff(sys.stderr)))


def _show_token(settings: Settings, new: bool) -> None:
    from cortan.config.keys import get_serve_token, new_serve_token

    if new:
        found = _source_override(settings)
        if found is not None:
            raise UsageError(f"the token comes from {found}: change it there")
        sys.stdout.write(new_serve_token() + "\n")
        return
    sys.stdout.write(get_serve_token(settings.serve.token_cmd).value + "\n")


def _source_override(settings: Settings) -> str | None:
    import os

    from cortan.config.keys import SERVE_TOKEN_VARIABLE

    if os.environ.get(SERVE_TOKEN_VARIABLE, "").strip():
        return SERVE_TOKEN_VARIABLE
    return "serve.token_cmd" if settings.serve.token_cmd else None


def _get_token(settings: Settings) -> str:
    from cortan.config.keys import get_serve_token

    return get_serve_token(settings.serve.token_cmd).value


def _is_loopback(address: str) -> bool:
    from cortan.config.settings import is_loopback_url

    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return is_loopback_url(f"http://{host}/")


async def _run(
    context: Context,
    settings: Settings,
    address: str,
    port: int | None,
    token: str | None,
    beyond: bool,
    no_log: bool,
    quiet: bool,
) -> int:
    from cortan.app import App, make_gateway
    from cortan.cli.continuation import open_store
    from cortan.serve.server import Listener, Stopper, bind, raise_open_files_limit, serve

    sock = bind(address, settings.serve.port if port is None else port)
    listener = Listener(address, sock.getsockname()[1])
    raise_open_files_limit()
    _setup_access_log(quiet)
    store = None if no_log or not settings.log else open_store(create=True)
    app = App.build(settings, concurrent=True)
    gateway = make_gateway(app, token=token, store=store, beyond_loopback=beyond)
    stopper = Stopper()
    stopper.install()
    _announce(context, listener, token, settings, beyond)
    try:
        return await serve(
            gateway,
            sock,
            stopper=stopper,
            on_stopping=lambda: context.diagnostics.notice(
                f"cortan serve: stopping (answers in progress get "
                f"{settings.serve.drain_timeout:g} s; Ctrl-C again to stop now)"
            ),
        )
    finally:
        await app.aclose()
        if store is not None:
            store.close()


def _announce(
    context: Context, listener: Listener, token: str | None, settings: Settings, beyond: bool
) -> None:
    from cortan.config.keys import get_serve_token

    say = context.diagnostics.notice
    url = listener.url
    if beyond:
        context.diagnostics.warning(
            f"listening on {listener.host}, beyond this machine: anyone who can reach port "
            f"{listener.port} and holds the token can use your models and API keys; "
            "the traffic is not encrypted (put TLS in front for anything but a trusted network)"
        )
    if token is None:
        context.diagnostics.warning(
            "serving without a token: every program on this machine can use your models and keys"
        )
        where = "none (--no-token)"
        key = "any (none is checked)"
    else:
        where = WHERE[get_serve_token(settings.serve.token_cmd, create=False).source]
        key = "the token"
    say(f"cortan serve: listening on {url}")
    if listener.everywhere:  # the URL above is loopback: say what other machines use
        others = (
            ", ".join(listener.elsewhere()) or f"this machine's addresses, port {listener.port}"
        )
        say(f"  elsewhere:   {others}")
    say(f"  OpenAI API   base URL {url}/v1, API key: {key}")
    say(f"  Ollama API   OLLAMA_HOST={url}, OLLAMA_API_KEY: {key}")
    say(f"  WebSocket    ws{url.removeprefix('http')}/ws")
    say(f"  token        {where}")
    say("Ctrl-C stops (answers in progress are given time to finish)")


def _setup_access_log(quiet: bool) -> None:
    """One line per request on stderr, unless --quiet; logging's own setup is untouched."""
    access = logging.getLogger("cortan.serve.access")
    if quiet or access.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(AccessFormatter())
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


class AccessFormatter(logging.Formatter):
    """``cortan serve: <line>``, sanitised: client names and errors quote outside text.

    One record is one line: a line break a client put in a model name would otherwise
    start a line of its own, which a reader or a log parser takes for the gateway's.
    """

    def format(self, record: logging.LogRecord) -> str:
        from cortan.render.sanitize import sanitize

        return sanitize(f"cortan serve: {record.getMessage()}".translate(ONE_LINE))


#: Line breaks as their escapes (``sanitize`` keeps LF and turns the others to LF).
ONE_LINE = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}
