"""Plain text for pipes and files: the answer as it arrives, flushed per piece.

No colour, no markup, no cursor codes. Escape sequences from the model are
neutralised unless ``raw`` is set, which the CLI allows only when stdout is not
a terminal (``--raw``), for scripts that want the model's bytes untouched.
"""

from __future__ import annotations

from typing import TextIO

from cortan.render.sanitize import sanitize


class PlainWriter:
    """Writes each piece of every answer to ``file`` as soon as it arrives."""

    def __init__(self, file: TextIO, *, raw: bool = False) -> None:
        self._file = file
        self._raw = raw
        self._held = ""  # a trailing "\r" waits: it may be half of a "\r\n"
        self._last = "\n"

    def write(self, text: str) -> None:
        if not self._raw:
            text = self._held + text
            self._held = "\r" if text.endswith("\r") else ""
            text = sanitize(text[:-1] if self._held else text)
        if text:
            self._file.write(text)
            self._file.flush()
            self._last = text[-1]

    def end(self) -> None:
        """Finish the answer on a line of its own."""
        if self._held:
            self._file.write(sanitize(self._held))
            self._held, self._last = "", "\r"
        if self._last != "\n":
            self._file.write("\n")
            self._last = "\n"
        self._file.flush()
