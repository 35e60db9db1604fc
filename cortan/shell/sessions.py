"""Slash commands on stored conversations: /save, /load, /sessions, and starting anew.

The session store records every exchange through its bus subscriber (the
recorder); these commands only tell the recorder which conversation comes next
and load stored turns into the shell's conversation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cortan.core.errors import UsageError

if TYPE_CHECKING:
    from cortan.shell.commands import Shell
    from cortan.store import SessionStore
    from cortan.store.recorder import Recorder


def _store(repl: Shell) -> tuple[SessionStore, Recorder]:
    store, recorder = repl.services.store, repl.services.recorder
    if store is None or recorder is None:
        raise UsageError("sessions are off (--no-log or log = false): nothing is stored")
    return store, recorder


async def do_sessions(repl: Shell, arg: str) -> None:
    store, recorder = _store(repl)
    conversations = store.list_conversations(limit=int(arg) if arg.isdigit() else 20)
    if not conversations:
        repl.dim("no stored conversations yet")
    for c in conversations:
        mark = "*" if c.id == recorder.conversation_id else " "
        name = c.name or "(unnamed)"
        repl.say(f" {mark} #{c.id}  {name}  {c.model or ''}")


async def do_save(repl: Shell, arg: str) -> None:
    store, recorder = _store(repl)
    if not arg:
        raise UsageError("usage: /save NAME")
    if recorder.conversation_id is None:
        recorder.new_name = arg  # named when its first message is stored
    else:
        store.rename(recorder.conversation_id, arg)
    repl.dim(f"this conversation is saved as {arg!r}")


async def do_load(repl: Shell, arg: str) -> None:
    store, recorder = _store(repl)
    if not arg:
        raise UsageError("usage: /load NAME (or #id); /sessions lists them")
    load_session(repl, store, recorder, arg, create=False)


def load_session(
    repl: Shell, store: SessionStore, recorder: Recorder, ref: str, *, create: bool
) -> None:
    """Switch to a stored conversation; with ``create``, a missing name starts a new one."""
    from cortan.core.messages import Message
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
    kept = select_history(store.messages(found.id))
    repl.conversation.load([Message(m.role, m.content) for m in kept])
    repl.conversation.system = found.system
    repl.conversation.model = found.model or repl.conversation.model
    recorder.continue_conversation(found.id)
    name = found.name or f"#{found.id}"
    repl.dim(f"loaded {name}: {len(repl.conversation.turns)} turns")


def start_new(repl: Shell) -> None:
    """After /clear: the next message starts a new stored conversation."""
    if repl.services.recorder is not None:
        repl.services.recorder.start_new(None)


def session_names(store: SessionStore | None) -> list[str]:
    """Names (and ids) for /load completion."""
    if store is None:
        return []
    return [c.name or f"#{c.id}" for c in store.list_conversations(limit=200)]
