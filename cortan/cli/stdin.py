"""Reading piped input without hanging and without swallowing what was not meant for us.

Rules, in order (docs/scripting.md explains them to users):

* ``--no-stdin``: never read.
* stdin is a terminal: read it only when the prompt is ``-``.
* stdin is a regular file already partly read (``while read line; do cortan ask
  "$line"; done < list``) and a prompt was given: leave it alone, the rest of the
  file belongs to the loop.
* otherwise (a pipe, a file, /dev/null): wait for the first byte. With a prompt
  argument the wait is bounded by ``stdin_timeout`` (a parent that holds stdin
  open without writing must not hang us); without one it is the only prompt,
  so we wait as ``cat`` would.

Reading stops one byte past ``max_bytes``: an enormous input is refused after
reading the limit, never loaded whole.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from typing import BinaryIO, NamedTuple

from cortan.core.errors import InputError
from cortan.core.images import sniff_image
from cortan.core.text import format_size

CHUNK = 1 << 16


class StdinResult(NamedTuple):
    data: bytes | None
    note: str | None = None


def should_read(stream: BinaryIO, *, has_prompt: bool, dash: bool) -> bool:
    """Whether stdin carries input for us at all (see the module docstring)."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):
        return False  # closed or not a real file: nothing for us
    if os.isatty(fd):
        return dash
    if stat.S_ISREG(mode) and has_prompt and not dash:
        try:
            return os.lseek(fd, 0, os.SEEK_CUR) == 0
        except OSError:
            return True
    return True


def read_stdin(
    stream: BinaryIO,
    *,
    max_bytes: int,
    timeout: float | None,
    label: str = "stdin",
    max_image_bytes: int | None = None,
) -> StdinResult:
    """Read all of stdin up to ``max_bytes``; ``timeout`` bounds the wait for the first byte.

    With ``max_image_bytes``, stdin whose first bytes are an image is held to that
    limit instead (``cat photo.png | cortan ask "what is this?"``).
    """
    fd = stream.fileno()
    if timeout is not None and not _wait_readable(fd, timeout):
        return StdinResult(
            None,
            f"nothing arrived on stdin within {timeout:g} s; asking without it "
            "(pass --no-stdin to skip the wait, or set stdin_timeout)",
        )
    chunks: list[bytes] = []
    size, limit, setting = 0, max_bytes, "max_input_bytes"
    while chunk := os.read(fd, CHUNK):
        if not chunks and max_image_bytes is not None and sniff_image(chunk):
            limit, setting = max_image_bytes, "max_image_bytes"
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise InputError(
                f"{label} is larger than the {format_size(limit)} limit "
                f"(setting {setting}); stopped reading"
            )
    return StdinResult(b"".join(chunks))


def _wait_readable(fd: int, timeout: float) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    except (OSError, ValueError):
        return True  # select cannot watch this kind of file: read it directly
    return bool(ready)


def get_stdin() -> BinaryIO:
    if sys.stdin is None:  # started with stdin closed (`cortan ask x <&-`): nothing to read
        return open(os.devnull, "rb")  # lives as long as the process
    return sys.stdin.buffer
