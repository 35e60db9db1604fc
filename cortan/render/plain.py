"""Plain text for pipes and files: the answer as it arrives, flushed per piece.

No colour, no markup, no cursor codes. Escape sequences from the model are
neutralised unless ``raw`` is set, which the CLI allows only when stdout is not
a terminal (``--raw``), for scripts that want the model's bytes untouched.

When the reader goes away (``cortan ask … | head -1``), the answer is no longer
wanted: the writer points stdout at /dev/null, so nothing else fails on the way
out, and raises :class:`cortan.core.errors.OutputClosedError`, which stops the
request (the server stops generating) and ends it quietly with exit code 141.
"""

from __future__ import annotations

import os
from typing import TextIO

from cortan.core.errors import OutputClosedError
from cortan.render.sanitize import sanitize


class PlainWriter:
    """Writes each piece of every answer to ``file`` as soon as it arrives."""

    def __init__(self, file: TextIO, *, raw: bool = False) -> None:
        self._file = file
        self._raw = raw
        self._held = ""  # a trailing "\r" waits: it may be half of a "\r\n"
        self._last = "\n"
        self.closed = False  # the reader went away

    def write(self, text: str) -> None:
        if not self._raw:
            text = self._held + text
            self._held = "\r" if text.endswith("\r") else ""
            text = sanitize(text[:-1] if self._held else text)
        if text:
            self._emit(text)
            self._last = text[-1]

    def end(self) -> None:
        """Finish the answer on a line of its own (raw: exactly as the model sent it)."""
        if self._raw:
            return
        if self._held:
            self._emit(sanitize(self._held))
            self._held, self._last = "", "\r"
        if self._last != "\n":
            self._emit("\n")
            self._last = "\n"

    def _emit(self, text: str) -> None:
        if self.closed:
            return
        try:
            self._file.write(text)
            self._file.flush()
        except BrokenPipeError:
            self._reader_gone()
        except OSError:  # a full disk: the request fails, and nothing fails again at exit
            self.closed = True
            reader_gone(self._file)
            raise

    def _reader_gone(self) -> None:
        self.closed = True
        raise reader_gone(self._file)


def reader_gone(file: TextIO) -> OutputClosedError:
    """Point ``file`` at /dev/null (the reader left) and return the error that says so."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, file.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file: nothing to redirect
        pass
    return OutputClosedError()
