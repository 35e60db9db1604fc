"""Slash commands on stored conversations: /save, /load, /fork, /sessions, starting anew.

The session store records every exchange through its bus subscriber (the
recorder); these commands only tell the recorder which conversation comes next
and load stored turns into the shell's conversation.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cortan.core.errors import CortanError, UsageError
from cortan.core.text import count_of, make_visible, one_line
from cortan.render.columns import fit_columns
from cortan.shell.conversation import Turn

if TYPE_CHECKING:
    from cortan.shell.commands import Shell
    from cortan.store import SessionStore, StoredMessage
    from cortan.store.recorder import Exchange, Recorder


def _store(repl: Shell) -> tuple[SessionStore, Recorder]:
    store, recorder = repl.services.store, repl.services.recorder
    if store is None or recorder is None:
        raise UsageError("sessions are off (--no-log or log = false): nothing is stored")
    return store, recorder


#: Conversations /sessions lists unless told how many.
SESSIONS_SHOWN = 20


async def do_sessions(repl: Shell, arg: str) -> None:
    """The newest conversations in aligned columns; says so when there are more."""
    store, recorder = _store(repl)
    # ASCII digits only: "²".isdigit() is true, yet int("²") raises (the shell died).
    if arg and not (arg.isascii() and arg.isdigit() and int(arg) > 0):
        raise UsageError("usage: /sessions [N] (the newest N; 20 unless told)")
    limit = int(arg) if arg else SESSIONS_SHOWN
    conversations = store.list_conversations(limit=limit)
    if not conversations:
        repl.dim("no stored conversations yet")
        return
    rows = [("", "id", "name", "last used", "msgs", "model", "first prompt")]
    for c in conversations:
        mark = "*" if c.id == recorder.conversation_id else ""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
        name = one_line(make_visible(c.name or "(unnamed)"), 24)
        model = make_visible(c.model or "")
        rows.append((mark, f"#{c.id}", name, when, str(c.message_count), model, c.title))
    # One space of margin before the columns; the rest of the window is theirs.
    fitted = fit_columns(rows, right={4}, width=repl.width - 1, drops=NARROW_DROPS)
    heading, *lines = (" " + line for line in fitted)
    repl.dim(heading)
    for line in lines:
        repl.say(line)
    total = store.count_conversations()
    if total > len(conversations):
        shown = len(conversations)
        repl.dim(f"the newest {shown} of {total} shown; /sessions {total} shows them all")


#: The /sessions columns a narrow window goes without, first to last: model, last used,
#: message count. Id, name and the first prompt say which conversation it is.
NARROW_DROPS = (5, 3, 4)


async def do_save(repl: Shell, arg: str) -> None:
    store, recorder = _store(repl)
    if not arg:
        raise UsageError("usage: /save NAME")
    from cortan.store.sessions import check_name

    name = check_name(arg)  # now: a name the store refused later lost every answer
    if recorder.conversation_id is not None:
        store.rename(recorder.conversation_id, name)  # refuses a name another one holds
        repl.dim(f"this conversation is saved as {name!r}")
        return
    # The recorder joins a stored conversation of that name (`chat --session NAME`
    # continues it): here that mixed this conversation into another one.
    if store.get_by_name(name) is not None:
        raise UsageError(f"a session named {name!r} already exists: choose another name")
    recorder.new_name = name  # named when its first message is stored
    repl.dim(f"this conversation will be stored as {name!r} from its first exchange")


async def do_fork(repl: Shell, arg: str) -> None:
    """Copy the conversation so far into a new stored one and go on there (``/fork [NAME]``).

    The original stays as it was, to come back to with ``/load``; the shell keeps
    its turns, since the copy holds the same ones.
    """
    store, recorder = _store(repl)
    name = arg.strip() or None
    if recorder.conversation_id is None:
        raise UsageError("nothing is stored in this conversation yet: there is nothing to fork")
    original = store.get(recorder.conversation_id)
    forked = recorder.fork(name)
    was = original.label if original is not None else f"#{recorder.conversation_id}"
    repl.dim(f"forked {was} as {forked.label}: going on in the copy; /load {was} goes back")


async def do_load(repl: Shell, arg: str) -> None:
    store, recorder = _store(repl)
    if not arg:
        raise UsageError("usage: /load NAME (or #id); /sessions lists them")
    load_session(repl, store, recorder, arg, create=False)


def load_session(
    repl: Shell, store: SessionStore, recorder: Recorder, ref: str, *, create: bool
) -> None:
    """Switch to a stored conversation; with ``create``, a missing name starts a new one."""
    from cortan.store.records import select_history
    from cortan.store.sessions import is_id

    found = store.find(ref)
    if found is None:
        if not create or is_id(ref):  # an id names a stored conversation, never a new one
            raise UsageError(f"no stored conversation {ref!r}; /sessions lists them")
        repl.conversation.clear()
        recorder.start_new(ref)
        repl.dim(f"new conversation {ref!r}")
        return
    stored = store.messages(found.id)
    kept = select_history(stored)
    was = model_label(repl)
    repl.conversation.load_turns(to_turns(kept))
    repl.conversation.system = found.system
    repl.conversation.model = found.model or repl.conversation.model
    recorder.continue_conversation(found.id)
    recorder.last_exchange = last_exchange(found.id, stored, kept)
    name = make_visible(found.name or f"#{found.id}")
    turns = repl.conversation.turns
    now = model_label(repl)
    switched = f"; model: {now} (was {was})" if now != was else ""
    repl.dim(f"loaded {name}: {count_of(len(turns), 'turn')}{switched}")
    if turns:  # where it stood: the last question and the start of its answer
        last = turns[-1]
        answer = one_line(last.answer, 60) if last.answer else "(no answer)"
        repl.dim(f"last: › {one_line(last.user, 60)} → {answer}")


def model_label(repl: Shell) -> str:
    """The model the next answer comes from, as /model names it: a conversation that
    /load brings back answers with its own model, which the user must be told."""
    try:
        return make_visible(str(repl.services.resolve(repl.conversation.model)))
    except CortanError:  # a stored model whose provider is gone: named as stored
        return make_visible(repl.conversation.model or "")


def last_exchange(
    conversation_id: int, stored: list[StoredMessage], kept: list[StoredMessage]
) -> Exchange | None:
    """The stored question of the last kept turn and its answer: what ``/retry`` replaces.

    Its answer is the message stored right after it (``select_history`` kept the pair),
    even an empty one, which ``kept`` leaves out.
    """
    from cortan.store.recorder import Exchange

    question = next((m for m in reversed(kept) if m.role == "user"), None)
    if question is None:
        return None
    after = [m for m in stored if m.id > question.id][:1]
    return Exchange(conversation_id, (question.id, *(m.id for m in after)))


def to_turns(messages: list[StoredMessage]) -> list[Turn]:
    """Stored messages (as ``select_history`` keeps them) as turns, with their token counts."""
    turns: list[Turn] = []
    for message in messages:
        if message.role == "user":
            turns.append(Turn(message.content, "", images=message.images))
        elif message.role == "assistant" and turns and not turns[-1].answer:
            turns[-1] = turns[-1]._replace(
                answer=message.content,
                interrupted=message.status == "interrupted",
                prompt_tokens=message.prompt_tokens,
                completion_tokens=message.completion_tokens,
                thinking=message.thinking,
            )
    return turns


def start_new(repl: Shell) -> None:
    """After /clear: the next message starts a new stored conversation."""
    if repl.services.recorder is not None:
        repl.services.recorder.start_new(None)


def session_names(store: SessionStore | None) -> list[str]:
    """Names (and ids) for /load completion."""
    if store is None:
        return []
    return [c.name or f"#{c.id}" for c in store.list_conversations(limit=200)]
