"""Diagnostics on stderr: one-sentence errors, dim notices, warnings.

stdout carries the answer only; everything cortan says about the answer goes
here. Text from outside cortan (server messages, model names) is made visible
(``cortan.core.text.make_visible``) because error messages quote it: a model or
session name with a zero-width character in it must not read as another one.
"""

from __future__ import annotations

from typing import TextIO

from cortan.core.text import make_visible


class Diagnostics:
    """Writes cortan's own remarks to stderr, styled only on a colour terminal."""

    def __init__(self, file: TextIO, *, color: bool) -> None:
        self._file = file
        self._color = color

    def _line(self, text: str, style: str) -> None:
        text = make_visible(text)  # a name in an error may hide a zero-width character
        if self._color:
            text = f"\x1b[{style}m{text}\x1b[0m"
        self._file.write(text + "\n")
        self._file.flush()

    def error(self, message: str) -> None:
        self._line(f"cortan: error: {message}", "31")

    def warning(self, message: str) -> None:
        self._line(f"cortan: warning: {message}", "33")

    def notice(self, message: str) -> None:
        self._line(message, "2")
