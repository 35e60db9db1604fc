"""What each slash command does, and the table that lists them.

The commands of a theme have a module of their own beside this one: on models
(:mod:`cortan.shell.models`), on what the next message brings in
(:mod:`cortan.shell.inputs`) and on stored conversations (:mod:`cortan.shell.sessions`).

Each handler takes the running shell (:class:`cortan.shell.commands.Shell`) and
the text after the command name. Handlers print through the shell (sanitised, to
its console) and raise :class:`cortan.core.errors.CortanError` for a one-line
error; the Repl shows it and returns to the prompt.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cortan.core.errors import UsageError
from cortan.core.messages import Message
from cortan.core.text import count_of, make_visible, shorten
from cortan.shell.commands import CommandTable, ExitShell, Shell, SlashCommand
from cortan.shell.inputs import do_attach, do_edit, do_file
from cortan.shell.models import do_model, do_models
from cortan.shell.sessions import do_fork, do_load, do_save, do_sessions, start_new

if TYPE_CHECKING:
    from cortan.core.requests import Attachment

KEYS_HELP = (
    'Keys: Enter sends · Alt-Enter (Esc Enter) new line · a line of """ opens a block '
    'until the next """ · Ctrl-R searches history (Enter sends the entry found, Esc or → '
    "takes it to edit) · Ctrl-C stops an answer or clears "
    "the line · Ctrl-Z suspends · Ctrl-D leaves · //text sends text starting with /"
)


async def do_help(repl: Shell, arg: str) -> None:
    width = max(len(c.usage) for c in repl.commands)
    for command in repl.commands:
        repl.say(hanging(f"  {command.usage.ljust(width)}  ", command.summary, repl.width))
    repl.dim(KEYS_HELP)


#: The fewest columns a summary is wrapped into beside its command; fewer, and it goes
#: on the lines below, indented.
NARROWEST = 20


def hanging(head: str, text: str, width: int) -> str:
    """``head`` then ``text`` wrapped to ``width``, its later lines under its first:
    a narrow terminal wrapped each summary back to column 0, under the commands."""
    if width - len(head) < NARROWEST:  # too narrow beside: below, indented
        indent = "    "
        below = textwrap.fill(
            text,
            max(width, len(indent) + NARROWEST),
            initial_indent=indent,
            subsequent_indent=indent,
        )
        return f"{head.rstrip()}\n{below}"
    return textwrap.fill(text, width, initial_indent=head, subsequent_indent=" " * len(head))


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
    from cortan.config.roles import get_role

    if not arg:
        show_role(repl)
        return
    conversation = repl.conversation
    if arg == "-":
        conversation.system, conversation.role, conversation.role_options = None, None, ()
        system = repl.services.settings.system
        repl.dim(
            "role dropped: " + ("the configured system prompt" if system else "no system prompt")
        )
        return
    role = get_role(repl.services.settings, arg)
    conversation.system, conversation.role = role.system, role.name
    conversation.role_options = role.options
    if role.model:
        conversation.model = role.model
    repl.dim(f"role {role.name}: {role.summary}")


def show_role(repl: Shell) -> None:
    """``/role`` alone: the role in use, as ``/model`` alone says the model. A role whose
    system prompt ``/system`` or ``/load`` has since replaced is no longer in use."""
    from cortan.config.roles import get_roles

    roles = get_roles(repl.services.settings)
    role = roles.get(repl.conversation.role or "")
    if role is not None and repl.conversation.system == role.system:
        repl.say(f"role: {role.name} ({role.summary}); /role - drops it")
    else:
        repl.say(f"no role (/role NAME uses one: {', '.join(roles)})")


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
                "role", "use a role (system prompt, model)", "/role [NAME|-]", "role", do_role
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
