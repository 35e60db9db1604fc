"""What each slash command does, and the table that lists them.

Each handler takes the running shell (:class:`cortan.shell.commands.Shell`) and
the text after the command name. Handlers print through the shell (sanitised, to
its console) and raise :class:`cortan.core.errors.CortanError` for a one-line
error; the Repl shows it and returns to the prompt.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cortan.core.errors import UsageError
from cortan.core.messages import Message
from cortan.core.text import count_of, format_size, make_visible, shorten
from cortan.shell.commands import CommandTable, ExitShell, Shell, SlashCommand
from cortan.shell.sessions import do_fork, do_load, do_save, do_sessions, start_new

if TYPE_CHECKING:
    from cortan.core.requests import Attachment
    from cortan.engine.hosts import HostState
    from cortan.engine.routes import Route

KEYS_HELP = (
    'Keys: Enter sends · Alt-Enter (Esc Enter) new line · a line of """ opens a block '
    'until the next """ · Ctrl-R searches history (Enter sends the entry found, Esc or → '
    "takes it to edit) · Ctrl-C stops an answer or clears "
    "the line · Ctrl-D leaves · //text sends text starting with /"
)


async def do_help(repl: Shell, arg: str) -> None:
    width = max(len(c.usage) for c in repl.commands)
    for command in repl.commands:
        repl.say(f"  {command.usage.ljust(width)}  {command.summary}")
    repl.dim(KEYS_HELP)


#: Seconds /model waits for a model list before it takes a name unchecked.
LIST_WAIT = 3.0


async def do_model(repl: Shell, arg: str) -> None:
    if arg:
        route = repl.services.resolve(arg)  # raises on a bad name, a misspelt provider
        await check_listed(repl, route)
        repl.conversation.model = arg
        repl.dim(f"model: {route}")
        return
    repl.say(f"model: {repl.services.resolve(repl.conversation.model)}")


async def check_listed(repl: Shell, route: Route) -> None:
    """Refuse a model an Ollama server does not have, naming the nearest one it has.

    Only Ollama's list is the truth: an OpenAI-compatible server may answer to names
    it does not list (llama.cpp answers to any). The list is asked again before a
    refusal (the model may have been pulled since), and a list that is not there
    within LIST_WAIT seconds (the server is down, slow) leaves the name unchecked.
    """
    config = repl.services.settings.providers.get(route.provider)
    if config is None or config.kind != "ollama":
        return
    names = await get_listing(repl, route.provider)
    if names is not None and not has_model(names, route.model):
        repl.models.start()  # pulled since the list was fetched?
        names = await get_listing(repl, route.provider)
    if names is None or has_model(names, route.model):
        return
    nearest = difflib.get_close_matches(route.model, names, n=1, cutoff=0.5)
    hint = f"did you mean {route.provider + ':' + nearest[0]!r}? " if nearest else ""
    raise UsageError(
        f"{route.provider} has no model {route.model!r}; {hint}"
        f"(`ollama pull {route.model}` gets it; /models lists them)"
    )


async def get_listing(repl: Shell, provider: str) -> list[str] | None:
    """``provider``'s model names once the list is in (None: not within LIST_WAIT, or failed)."""
    await asyncio.to_thread(repl.models.loaded.wait, LIST_WAIT)
    return repl.models.listing(provider)


def has_model(names: list[str], model: str) -> bool:
    """Whether Ollama serves ``model``: a name without a tag means ``:latest``."""
    return model in names or (":" not in model and f"{model}:latest" in names)


async def do_models(repl: Shell, arg: str) -> None:
    if not repl.models.loaded.is_set():
        repl.dim("fetching the model list…")
        await asyncio.to_thread(repl.models.loaded.wait, 30)
    for model in repl.models.models:
        details = " · ".join(x for x in (model.family, model.parameter_size) if x)
        name = make_visible(f"{model.provider}:{model.name}")  # a name picked by what it shows
        repl.say(f"  {name}" + (f"  ({make_visible(details)})" if details else ""))
    for alias, target in repl.services.settings.aliases.items():
        repl.say(f"  {alias} → {target}")
    for provider, error in repl.models.errors.items():
        repl.dim(f"  {provider}: {error}")
    for host in repl.services.host_states():
        repl.dim("  " + describe_host(host))
    repl.models.start()  # refresh for next time


def describe_host(host: HostState) -> str:
    """One host's circuit as this shell saw it: state, failures, latency."""
    parts = [f"{host.provider} {host.url}", f"circuit {host.state.value}"]
    if host.failures:
        parts.append(f"{host.failures} failures")
    if host.reopens_in:
        parts.append(f"retried in {host.reopens_in:.0f} s")
    if host.latency is not None:
        parts.append(f"first token {host.latency:.2f} s")
    return " · ".join(parts)


async def do_system(repl: Shell, arg: str) -> None:
    if arg == "-":
        repl.conversation.system = ""
        repl.dim("system prompt cleared")
    elif arg:
        repl.conversation.system = arg
        repl.dim("system prompt set")
    else:
        current = repl.conversation.system
        if current is None:
            current = repl.services.settings.system
        repl.say(f"system: {current}" if current else "no system prompt (/system TEXT sets one)")


async def do_clear(repl: Shell, arg: str) -> None:
    repl.conversation.clear()
    start_new(repl)
    repl.dim("new conversation")


async def do_role(repl: Shell, arg: str) -> None:
    from cortan.config.roles import get_role, get_roles

    if not arg:
        names = ", ".join(get_roles(repl.services.settings))
        raise UsageError(f"usage: /role NAME; roles: {names}")
    role = get_role(repl.services.settings, arg)
    repl.conversation.system = role.system
    repl.conversation.role_options = role.options
    if role.model:
        repl.conversation.model = role.model
    repl.dim(f"role {role.name}: {role.summary}")


async def do_retry(repl: Shell, arg: str) -> None:
    """Ask the last question again; a new answer replaces the last one, here and on disk.

    The old exchange stays until the new answer has come (finished, or interrupted
    with what arrived): a retry that fails leaves the conversation as it was, and
    the shell tells the recorder which stored exchange the new one replaced, so that
    ``/load`` and ``ask -c`` never send the discarded answer (issue 21).
    """
    conversation = repl.conversation
    last = conversation.last_prompt()
    if last is None:
        raise UsageError("nothing to retry yet")
    prompt, attachments = last
    recorder = repl.services.recorder
    dropped = conversation.drop_last_turn() if conversation.last_added_turn else None
    replaced = recorder.last_exchange if recorder is not None and dropped is not None else None
    conversation.pending[:0] = list(attachments)
    await repl.send(prompt)
    if not conversation.last_added_turn:  # failed, refused or not sent: nothing replaced
        if dropped is not None:
            conversation.restore_turn(dropped)
        return
    if recorder is not None and replaced is not None:
        recorder.discard(replaced)


#: Tried in order when neither $VISUAL nor $EDITOR is set, as Debian's sensible-editor
#: does (git and crontab open vi): /edit works on a fresh machine, not only a set-up one.
FALLBACK_EDITORS = ("editor", "nano", "vi")


def find_editor() -> str | None:
    """The editor /edit opens: $VISUAL, $EDITOR, else the first fallback on PATH."""
    chosen = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if chosen:
        return chosen
    return next((name for name in FALLBACK_EDITORS if shutil.which(name)), None)


async def do_edit(repl: Shell, arg: str) -> None:
    editor = find_editor()
    if not editor:
        raise UsageError("no editor found: set $VISUAL or $EDITOR to the one /edit should open")
    last = repl.conversation.last_request
    initial = last.prompt if arg.strip() == "last" and last is not None else ""
    limit = repl.services.settings.max_input_bytes
    text = await asyncio.to_thread(edit_text, editor, initial, limit)
    if not text.strip():
        repl.dim("nothing saved; nothing sent")
        return
    text = text.rstrip("\n")
    show_sent(repl, text)  # the prompt line shows "/edit"; the transcript shows what went
    await repl.send(text)


#: Lines of an edited prompt shown in the transcript before the rest is counted.
SHOWN_LINES = 12


def show_sent(repl: Shell, text: str) -> None:
    """Write ``text`` as if typed at the prompt: ``›`` first, ``…`` on later lines."""
    lines = text.split("\n")
    for number, line in enumerate(lines[:SHOWN_LINES]):
        repl.say(("› " if number == 0 else "… ") + line)
    if len(lines) > SHOWN_LINES:
        repl.dim(f"… and {len(lines) - SHOWN_LINES} more lines")


def edit_text(editor: str, initial: str, limit: int) -> str:
    """Open ``editor`` on a temporary file holding ``initial``; return what was saved.

    What was saved is read as any input is: at most ``limit`` bytes (an editor that
    wrote gigabytes cost as much memory), and text only (NUL bytes or invalid UTF-8
    were replaced and sent on).
    """
    with tempfile.TemporaryDirectory(prefix="cortan-") as folder:
        path = Path(folder) / "prompt.md"
        path.write_text(initial, encoding="utf-8")
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except OSError as exc:
            raise UsageError(f"cannot run the editor {editor!r}: {exc.strerror}") from None
        if done.returncode != 0:
            raise UsageError(f"the editor exited with status {done.returncode}; nothing sent")
        data = _read_edited(path, limit)
        from cortan.core.text import decode_text

        return decode_text(data, "The edited prompt")


def _read_edited(path: Path, limit: int) -> bytes:
    """The saved prompt; an editor may have removed it, or left a FIFO or a link to
    /dev/zero there (an internal error that ended the shell, or a hang)."""
    from cortan.core.files import FileRefused, read_small_file

    try:
        return read_small_file(path, limit)
    except FileRefused as exc:
        if "larger" in str(exc):
            raise UsageError(
                f"the edited prompt is over max_input_bytes ({limit} bytes); nothing sent"
            ) from None
        raise UsageError("the editor left no file to read; nothing sent") from None
    except FileNotFoundError:
        raise UsageError("the editor left no file to read; nothing sent") from None
    except OSError as exc:
        from cortan.core.errors import why_unreadable

        raise UsageError(f"cannot read what the editor saved: {why_unreadable(exc)}") from None


async def do_file(repl: Shell, arg: str) -> None:
    if not arg:
        raise UsageError("usage: /file PATH")
    from cortan.engine.attachments import read_attachment

    used = sum(len(a.data) for a in repl.conversation.pending)  # one limit for them all
    limit = repl.services.settings.max_input_bytes
    wait = repl.services.settings.stdin_timeout
    attachment = read_attachment(Path(arg), max_bytes=limit, used=used, wait=wait)
    _attach(repl, attachment)


def _attach(repl: Shell, attachment: Attachment) -> None:
    """Hold ``attachment`` for the next message, saying so as a sentence: the label
    (``Image photo.png``, ``File notes.txt``) heads a block sent to the model."""
    repl.conversation.pending.append(attachment)
    what = attachment.label[:1].lower() + attachment.label[1:]
    repl.dim(f"attached {what} ({format_size(len(attachment.data))}) to the next message")


async def do_attach(repl: Shell, arg: str) -> None:
    """/attach PATH: an image (known by its bytes) or a text file, for the next message."""
    if not arg:
        raise UsageError("usage: /attach PATH (an image or a text file)")
    from cortan.engine.attachments import read_attachment

    settings = repl.services.settings
    texts = [a for a in repl.conversation.pending if not a.label.startswith("Image ")]
    attachment = read_attachment(
        Path(arg),
        max_bytes=settings.max_input_bytes,
        used=sum(len(a.data) for a in texts),
        max_image_bytes=settings.max_image_bytes,
        wait=settings.stdin_timeout,  # a named pipe nobody writes to: refused, not a hang
    )
    _attach(repl, attachment)


async def do_think(repl: Shell, arg: str) -> None:
    """/think on|off|low|medium|high|default: how much the model should think from now on."""
    from cortan.core.requests import THINK_VALUES, parse_think

    if not arg:
        current = repl.conversation.think
        words = [word for word, value in THINK_VALUES.items() if value == current]
        said = words[0] if current is not None and words else "the default"
        repl.say(f"thinking: {said} (/think on|off|low|medium|high|default)")
        return
    repl.conversation.think = None if arg.strip().lower() == "default" else parse_think(arg)
    repl.dim(f"thinking: {arg.strip().lower()}")


async def do_thinking(repl: Shell, arg: str) -> None:
    """/thinking: the last answer's reasoning, whole (the scrollback keeps one line of it)."""
    thought = repl.conversation.last_thinking
    if not thought:
        repl.dim("no reasoning yet: the model has not thought aloud in this conversation")
        return
    repl.dim(thought)


async def do_usage(repl: Shell, arg: str) -> None:
    conversation = repl.conversation
    turns = conversation.turns
    prompt = sum(t.prompt_tokens or 0 for t in turns)
    completion = sum(t.completion_tokens or 0 for t in turns)
    repl.say(
        f"this conversation: {count_of(len(turns), 'turn')}, {prompt} tokens in, {completion} out"
    )
    history = conversation.history()
    pending = conversation.pending
    if pending:  # what /file and /attach hold goes with the next message: count it now
        history = (*history, Message("user", waiting_text(pending)))
    usage = await repl.services.measure(conversation.model, history, conversation.system)
    repl.say(
        f"context: about {usage.used} of {usage.limit} tokens used ({usage.model}), "
        f"{usage.left} left after {usage.reserve} kept for the answer"
    )
    if pending:
        repl.dim(f"(counting {count_of(len(pending), 'attachment')} waiting for the next message)")


def waiting_text(pending: Sequence[Attachment]) -> str:
    """The text of attachments not sent yet, for an estimate (images: not text, not counted)."""
    from cortan.core.images import sniff_image

    texts = (a.data.decode("utf-8", "replace") for a in pending if not sniff_image(a.data))
    return "\n\n".join(texts)


async def do_set(repl: Shell, arg: str) -> None:
    """/set vi|emacs: the keys; /set KEY VALUE: a generation option from now on, as
    ``-o KEY=VALUE`` sets it for ``ask`` (``ollama run``'s ``/set parameter``);
    /set KEY - drops it again; /set alone says what is set."""
    from prompt_toolkit.enums import EditingMode

    from cortan.core.options import parse_option

    modes = {"vi": EditingMode.VI, "emacs": EditingMode.EMACS}
    key, _, value = arg.strip().partition("=" if "=" in arg else " ")
    key, value = key.strip(), value.strip()
    if not key:
        _say_settings(repl)
    elif key in modes and not value:
        repl.session.app.editing_mode = modes[key]
        repl.session.editing_mode = modes[key]
        repl.dim(f"{key} keys")
    elif not value:
        raise UsageError(f"usage: /set {key} VALUE (or /set {key} - to drop it)")
    elif value == "-":
        name, _ = parse_option(f"{key}=0")  # the name checked, with the known ones on a typo
        dropped = repl.conversation.set_options.pop(name, None)
        repl.dim(f"{name}: the default again" if dropped is not None else f"{name} was not set")
    else:
        name, parsed = parse_option(f"{key}={value}")
        repl.conversation.set_options[name] = parsed
        repl.dim(f"{name} = {_shown(parsed)} from now on (/set {name} - drops it)")


def _say_settings(repl: Shell) -> None:
    mode = "vi" if repl.session.editing_mode.value == "VI" else "emacs"
    conversation = repl.conversation
    given = [
        *(f"{k} = {_shown(v)} (role)" for k, v in conversation.role_options
          if k not in conversation.set_options),
        *(f"{k} = {_shown(v)}" for k, v in conversation.set_options.items()),
    ]  # fmt: skip
    options = "; ".join(given) if given else "the model's defaults"
    repl.say(f"keys: {mode} · options: {options} (/set KEY VALUE, /set KEY -)")


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


async def do_run(repl: Shell, arg: str) -> None:
    """/run WORDS: the words as one shell command, shown, asked about, run on a yes."""
    if not arg.strip():
        raise UsageError("usage: /run WHAT TO DO (in words: /run find the largest files here)")
    run_command = repl.services.run_command
    if run_command is None:
        raise UsageError("/run is not available in this shell")
    await run_command(
        arg,
        ask=repl.run_request,
        model=repl.conversation.model,
        history=repl.conversation.history(),
        input=repl.session.input,
        output=repl.session.output,
    )


async def do_tools(repl: Shell, arg: str) -> None:
    """/tools [on|off]: let the model call tools from now on, or not; with no word, list
    them. Every call is still asked about (docs/tools.md)."""
    from cortan.core.errors import CortanError
    from cortan.core.text import make_visible

    word = arg.strip().lower()
    if word in ("on", "off"):
        repl.conversation.tools = word == "on"
        if word == "on" and repl.conversation.ask is None:
            repl.dim("tools: on; no terminal to ask on, so only [approval] allow_tools run")
        else:
            repl.dim(f"tools: {word}")
        return
    if word:
        raise UsageError(f"/tools takes on or off, not {make_visible(arg.strip())!r}")
    state = "on" if repl.conversation.tools else "off (/tools on)"
    repl.say(f"tools: {state}")

    async def failed(sentence: str) -> None:
        repl.error(sentence)

    async def noted(sentence: str) -> None:
        repl.dim(sentence)

    try:
        tools = await repl.services.list_tools(failed, noted)
    except CortanError as exc:
        repl.error(str(exc))
        return
    width = max((len(name) for name, _ in tools), default=0)
    room = max(repl.width - width - 5, 20)  # one line per tool: a wrapped one reads as two
    for name, description in tools:
        first = description.strip().splitlines()[0] if description.strip() else ""
        repl.say(f"  {make_visible(name).ljust(width)}  {shorten(make_visible(first), room)}")


async def do_exit(repl: Shell, arg: str) -> None:
    raise ExitShell


async def do_copy(repl: Shell, arg: str) -> None:
    """``/copy``: the last answer, as the model sent it; ``/copy code``: its last code
    block. Through the terminal's clipboard (OSC 52, see :mod:`cortan.render.clipboard`)."""
    from cortan.render import clipboard
    from cortan.render.extract import extract_code

    what = arg.strip().lower()
    if what not in ("", "code"):
        raise UsageError("/copy copies the last answer; /copy code, its last code block")
    turns = repl.conversation.turns
    if not turns or not turns[-1].answer:
        raise UsageError("nothing to copy yet: no answer in this conversation")
    text: str | None = turns[-1].answer
    if what == "code" and (text := extract_code(turns[-1].answer, last=True)) is None:
        raise UsageError("the last answer has no fenced code block; /copy copies all of it")
    assert text is not None
    if reason := clipboard.why_not(repl.console.file, os.environ):
        raise UsageError(f"cannot copy: {reason}; select the text with the mouse instead")
    if (size := len(text.encode())) > clipboard.MAX_COPY_BYTES:
        raise UsageError(
            f"too long to copy through the terminal ({size:,} bytes; "
            f"the most is {clipboard.MAX_COPY_BYTES:,})"
        )
    clipboard.copy_text(repl.console.file, text, os.environ)
    tmux = (
        " (in tmux: needs set-clipboard on or allow-passthrough on)" if "TMUX" in os.environ else ""
    )
    what = "the last code block" if what else "the last answer"
    repl.dim(f"sent {what} to the terminal's clipboard, {len(text):,} characters{tmux}")


def make_command_table() -> CommandTable:
    return CommandTable(
        [
            SlashCommand("help", "list commands and keys", "/help", "none", do_help),
            SlashCommand("model", "show or switch the model", "/model [NAME]", "model", do_model),
            SlashCommand("models", "list models of every provider", "/models", "none", do_models),
            SlashCommand(
                "system", "show or set the system prompt", "/system [TEXT|-]", "text", do_system
            ),
            SlashCommand("clear", "start a new conversation", "/clear", "none", do_clear),
            SlashCommand("retry", "regenerate the last answer", "/retry", "none", do_retry),
            SlashCommand(
                "edit", "write the next prompt in $EDITOR", "/edit [last]", "none", do_edit
            ),
            SlashCommand(
                "file", "attach a text file to the next message", "/file PATH", "path", do_file
            ),
            SlashCommand(
                "attach",
                "attach an image or file to the next message",
                "/attach PATH",
                "path",
                do_attach,
            ),
            SlashCommand(
                "think",
                "how much the model thinks",
                "/think [on|off|LEVEL|default]",
                "think",
                do_think,
            ),
            SlashCommand(
                "thinking", "show the last answer's reasoning", "/thinking", "none", do_thinking
            ),
            SlashCommand("usage", "tokens used and context left", "/usage", "none", do_usage),
            SlashCommand(
                "role", "use a role (system prompt, model)", "/role NAME", "role", do_role
            ),
            SlashCommand("sessions", "list stored conversations", "/sessions", "none", do_sessions),
            SlashCommand("save", "name this conversation", "/save NAME", "text", do_save),
            SlashCommand(
                "fork", "go on in a copy of this conversation", "/fork [NAME]", "text", do_fork
            ),
            SlashCommand(
                "load", "switch to a stored conversation", "/load NAME", "session", do_load
            ),
            SlashCommand(
                "run", "turn words into a shell command, run on a yes", "/run WORDS", "text", do_run
            ),
            SlashCommand(
                "set",
                "vi or emacs keys, or a generation option",
                "/set [vi|emacs|KEY VALUE]",
                "setting",
                do_set,
            ),
            SlashCommand(
                "copy", "copy the last answer or code block", "/copy [code]", "none", do_copy
            ),
            SlashCommand(
                "tools",
                "list tools, or let the model call them",
                "/tools [on|off]",
                "none",
                do_tools,
            ),
            SlashCommand("exit", "leave the shell", "/exit", "none", do_exit),
        ],
        aliases={"quit": "exit", "q": "exit", "?": "help", "regenerate": "retry"},
    )
