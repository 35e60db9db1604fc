"""cortan's private files (store, history, exports), opened without following links.

A data folder can come from a repository (``CORTAN_DATA_DIR=./.cortan``), so the
names inside it may be planted: a symbolic link at ``history`` pointing at
``~/.bashrc`` would have every typed line appended there, a dangling one at the
store would create it wherever the link points. So the last component of each of
these paths must be a regular file or absent: it is looked at with ``lstat`` for a
clear sentence, then opened with ``O_NOFOLLOW`` (no race between the two) and
non-blocking (a FIFO never blocks the open), and its mode is set on the open
descriptor, whatever the umask and whatever mode the file had.

Small files a user names (the config file, a ``--schema`` file) are read whole with
:func:`read_small_file`, which never waits on a FIFO and never reads past its limit:
``CORTAN_CONFIG=/dev/zero`` or a schema link to one ends at once.

Layer: core (stdlib only). Callers turn ``NotPrivateFile`` into their own error.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

PRIVATE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def expand_user(path: Path) -> Path:
    """``path`` with a leading ``~`` or ``~user`` made the home folder it names.

    ``~nobody-here/x`` names no home: Python raises RuntimeError for it, an internal
    error to the user. It is kept as typed instead, so the open that follows says
    there is no such file, as a shell would.
    """
    try:
        return path.expanduser()
    except RuntimeError:
        return path


class FileRefused(Exception):
    """A file a user named is no small regular file; ``str()`` says why in a few words."""


class NotPrivateFile(Exception):
    """The path is a link or not a regular file; ``str()`` says which, in a few words."""


def refusal(path: Path) -> str | None:
    """Why ``path`` cannot be one of cortan's private files, or None (absent is fine)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    return describe_mode(info.st_mode)


def describe_mode(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO)"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def open_private(path: Path, flags: int, *, mode: int = PRIVATE_MODE) -> int:
    """Open ``path`` (a regular file or, with ``O_CREAT``, none yet) and set its mode.

    Raises NotPrivateFile for a link or anything but a regular file, before a byte
    is read or written; OSError for the rest (permissions, a full disk). The mode
    is set on the descriptor when the file is the user's own.
    """
    reason = refusal(path)
    if reason is not None:
        raise NotPrivateFile(reason)
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # made a link since the lstat above
            raise NotPrivateFile("is a symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO without reader, a folder
            raise NotPrivateFile("is not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        reason = describe_mode(info.st_mode)
        if reason is not None:
            raise NotPrivateFile(reason)
        if _NONBLOCK:
            os.set_blocking(fd, True)
        if stat.S_IMODE(info.st_mode) != mode and info.st_uid == os.getuid():
            _set_mode(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _set_mode(fd: int, mode: int) -> None:
    """Best effort: a store on a read-only medium can still be read (EROFS)."""
    try:
        os.fchmod(fd, mode)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EPERM):
            raise


def read_small_file(path: Path, limit: int, *, pipes: bool = False) -> bytes:
    """The bytes of the regular file ``path``, which must hold at most ``limit`` of them.

    Opened without blocking, so a FIFO never holds the open; a folder raises
    IsADirectoryError, a FIFO or device FileRefused (reading one might never end),
    and so does a file past ``limit``, after reading just one byte more. Other
    OSErrors (missing, permissions, a link loop) are raised as they are. With
    ``pipes`` (``--template-file <(…)``) a pipe or device is read too, waiting for
    its writer as ``cat`` would, and held to the same limit: /dev/zero ends at once.
    """
    fd = os.open(path, os.O_RDONLY | _CLOEXEC | (0 if pipes else _NONBLOCK))
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode) and not pipes:
            raise FileRefused("is not a regular file")
        if _NONBLOCK and not pipes:
            os.set_blocking(fd, True)
        raw = _read_up_to(file, limit + 1)
    if len(raw) > limit:
        from cortan.core.text import format_size

        raise FileRefused(f"is larger than {format_size(limit)}")
    return raw


def _read_up_to(file: BinaryIO, size: int) -> bytes:
    """At most ``size`` bytes: a pipe hands them over in pieces, a file in one."""
    chunks: list[bytes] = []
    while size > 0 and (chunk := file.read(size)):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
