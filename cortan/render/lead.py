"""The first words of an answer, written plain while the markdown renderer still loads.

Layer: render (stdlib only: the point is to write before rich is imported). Against a
fast server the first token of an answer can arrive before rich.markdown, markdown-it
and pygments are loaded (about 65 ms of imports, started as the request goes out):
`cortan ask` then waited for them before showing anything (issue 21, the first visible
byte). The start of most answers is a line of plain words, which rich draws exactly as
they are, so `Lead` writes those words at once; `MarkdownStream` then takes over with a
live region that knows they are on the screen (``shown``), and redraws only what
rendering changes. Nothing is drawn twice, and nothing is drawn that the live view
would not have drawn for the same text.

"Plain" is deliberately narrow: a letter first (no list, heading, quote, fence or
indented code can start with one), then letters of the scripts below Hebrew (one cell
each, written left to right), digits, spaces and punctuation that markdown leaves as it
is on a single line (no ``*_`~[]<>&|\\#=+``, so no emphasis, code, link, HTML, entity
or table), no line break (a next line could make the first a heading), and shorter than
the terminal is wide (no wrap the region would not know of). An answer leaves the lead
at its first piece outside that; it is then shown as before, only later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

#: Punctuation that markdown leaves as it is inside one line of a paragraph.
_PUNCTUATION = frozenset(" ,.;:!?'\"()/%-")
_DIGITS = frozenset("0123456789")
_LAST_SIMPLE_LETTER = 0x058F  # Latin, Greek, Cyrillic, Armenian: one cell, left to right


def _is_plain(char: str) -> bool:
    if char in _PUNCTUATION or char in _DIGITS:
        return True
    return char.isalpha() and ord(char) <= _LAST_SIMPLE_LETTER  # combining marks are not alpha


def writes_live(file: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a rich console on ``file`` will certainly draw a live region.

    The conditions are rich's (a terminal, interactive, not dumb); any variable that
    overrides its detection (``TTY_COMPATIBLE``, ``TTY_INTERACTIVE``, ``FORCE_COLOR``)
    turns the lead off rather than guess what rich will decide.
    """
    if any(name in environ for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR")):
        return False
    if environ.get("TERM", "").lower() in ("", "dumb", "unknown"):
        return False
    try:
        return file.isatty()
    except ValueError:  # closed
        return False


def terminal_width(file: TextIO, environ: Mapping[str, str] = os.environ) -> int:
    """The columns a line may take without wrapping: the terminal's, or fewer if
    ``COLUMNS`` says so (rich renders for ``COLUMNS`` when it is set)."""
    try:
        width = os.get_terminal_size(file.fileno()).columns
    except (OSError, ValueError):
        return 0
    columns = environ.get("COLUMNS", "")
    return min(width, int(columns)) if columns.isascii() and columns.isdigit() else width


class Lead:
    """One answer's first words on ``file``, for as long as they are plain.

    `offer` each piece while the renderer loads; once it answers False, or the renderer
    is ready, hand `text` to the markdown stream (as what is shown, and as its first
    piece) and offer nothing more.
    """

    def __init__(self, file: TextIO, width: int) -> None:
        self._file = file
        self._width = width
        self._parts: list[str] = []
        self._length = 0
        self._open = True

    @property
    def text(self) -> str:
        """What this lead wrote, the start of the answer, on the cursor's row from its
        first column; the markdown stream is fed it as the answer's first piece."""
        return "".join(self._parts)

    def offer(self, text: str) -> bool:
        """Write ``text`` if the answer is still plain with it; False leaves it unwritten
        and closes the lead."""
        if not self._open:
            return False
        first = not self._length
        if (
            self._length + len(text) >= self._width
            or (first and text and not text[0].isalpha())
            or not all(map(_is_plain, text))
        ):
            self._open = False
            return False
        if text:
            self._file.write(text)
            self._file.flush()
            self._parts.append(text)
            self._length += len(text)
        return True
