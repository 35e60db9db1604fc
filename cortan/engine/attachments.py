"""Attaching files to a prompt: ``cortan ask -f PATH`` and the REPL's ``/file PATH``.

Engine layer, used by both front ends so that a file is refused the same way
wherever it is attached. A file becomes an :class:`~cortan.core.events.Attachment`
labelled ``File PATH``, which the context manager frames like piped input. It is
checked before anything is sent: it must exist and not be a folder, fit in what
is left of ``max_input_bytes`` (the limit covers the prompt, stdin and every
file together), and be text (the guard's own decoding rules). Its size is
looked up first and at most the limit plus one byte is read, so attaching a
huge file or an endless device costs nothing; pipes (``-f <(git diff)``) work.
"""

from __future__ import annotations

import os
import select
import stat
from pathlib import Path

from cortan.core.errors import InputError, why_unreadable
from cortan.core.files import expand_user
from cortan.core.images import sniff_image
from cortan.core.requests import Attachment
from cortan.core.text import decode_text, format_size

CHUNK = 1 << 16


def read_attachment(
    path: Path,
    *,
    max_bytes: int,
    used: int = 0,
    label: str | None = None,
    max_image_bytes: int | None = None,
    wait: float | None = None,
) -> Attachment:
    """Read ``path`` as a text attachment, or raise InputError with one sentence.

    ``used`` is how many bytes of ``max_bytes`` the prompt and earlier attachments
    already take; ``label`` defaults to ``File PATH`` with the path as given. With
    ``max_image_bytes`` (``ask -a``, ``/attach``) an image is taken too, known by
    its bytes and held to its own limit instead of the text's. With ``wait`` (the
    shell's), a pipe or device that sends nothing for that many seconds is refused:
    a named pipe nobody writes to would otherwise hold the shell for good, deaf to
    Ctrl-C.
    """
    label = label or f"File {path}"
    room = max(max_bytes - used, 0)
    size = _stat_size(path)
    reach = max(room, max_image_bytes or 0)
    if size is not None and size > reach:
        if max_image_bytes is not None and sniff_image(_read_at_most(path, 16)):
            raise _image_too_large(path, max_image_bytes)  # not max_input_bytes's to raise
        raise _too_large(path, size, max_bytes, used)
    data = _read_at_most(path, reach + 1, wait)
    if max_image_bytes is not None and sniff_image(data):
        if len(data) > max_image_bytes:
            raise _image_too_large(path, max_image_bytes)
        return Attachment(f"Image {path}", data)
    if len(data) > room:
        raise _too_large(path, None, max_bytes, used)
    decode_text(data, label)
    return Attachment(label, data)


def _stat_size(path: Path) -> int | None:
    """The size of a regular file; None for pipes and devices, whose size is unknown."""
    try:
        info = expand_user(path).stat()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"cannot attach {path}: it is a folder; attach the files in it one by one")
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _read_at_most(path: Path, limit: int, wait: float | None = None) -> bytes:
    if wait is not None and hasattr(select, "poll"):
        return _read_waiting_at_most(path, limit, wait)
    chunks: list[bytes] = []
    size = 0
    try:
        with expand_user(path).open("rb", buffering=0) as file:
            while size < limit and (chunk := file.read(min(CHUNK, limit - size))):
                chunks.append(chunk)
                size += len(chunk)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    return b"".join(chunks)


def _read_waiting_at_most(path: Path, limit: int, wait: float) -> bytes:
    """As :func:`_read_at_most`, but a pipe or device silent for ``wait`` seconds is
    refused. Opened without blocking: opening a named pipe waits for a writer."""
    chunks: list[bytes] = []
    size = 0
    try:
        fd = os.open(expand_user(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        poller = None
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.set_blocking(fd, True)
        else:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
        while size < limit:
            if poller is not None and not poller.poll(wait * 1000):
                raise InputError(
                    f"cannot attach {path}: nothing came from it in {wait:g} s "
                    "(a named pipe nobody writes to?)"
                )
            try:
                chunk = os.read(fd, min(CHUNK, limit - size))
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _unreadable(path: Path, exc: OSError) -> InputError:
    return InputError(f"cannot attach {path}: {why_unreadable(exc)}")


def _image_too_large(path: Path, max_image_bytes: int) -> InputError:
    limit = f"the {format_size(max_image_bytes)} limit (setting max_image_bytes)"
    return InputError(f"cannot attach {path}: the image is over {limit}")


def _too_large(path: Path, size: int | None, max_bytes: int, used: int) -> InputError:
    limit = f"the {format_size(max_bytes)} limit (setting max_input_bytes)"
    if used and (size is None or size <= max_bytes):
        return InputError(f"cannot attach {path}: with the rest of the input it is over {limit}")
    if size is None:
        return InputError(f"cannot attach {path}: it is larger than {limit}")
    return InputError(f"cannot attach {path}: it is {format_size(size)}, over {limit}")
