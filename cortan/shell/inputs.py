"""Slash commands that bring the next message in from outside the prompt line.

/edit writes it in ``$VISUAL`` or ``$EDITOR``; /file and /attach hold a text file or
an image for it. What comes in is read as any input is: bounded by
``max_input_bytes`` (``max_image_bytes`` for images), text decoded, and a FIFO or a
link to ``/dev/zero`` refused rather than waited on.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cortan.core.errors import UsageError
from cortan.core.text import format_size

if TYPE_CHECKING:
    from cortan.core.requests import Attachment
    from cortan.shell.commands import Shell


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
    # ... and the history keeps it, for Up and Ctrl-R, as bash keeps what Ctrl-X Ctrl-E
    # ran. Held back as a typed line is, so the secret guard's "no" forgets it too.
    repl.session.history.append_string(text)
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
