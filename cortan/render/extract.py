"""Code blocks out of an answer: ``ask -x`` and ``--xl``, and the REPL's ``/copy code``.

Layer: render (stdlib only). A fenced code block is taken as CommonMark draws one at
the top level: an opening fence of three or more backticks or tildes, indented at
most three spaces, then the lines up to a closing fence of the same character, at
least as long, with nothing after it but spaces. Its content is those lines, without
the fences, ending in a newline; a block the answer never closed (the model was cut
off) counts to the end of the answer, unless it is empty. Fences inside a list item or
a quote are not top-level and are not taken, as llm's ``-x`` does not take them.

`ExtractView` (render/views.py) feeds the stream line by line into `CodeBlocks`, so
the first block is printed the moment its closing fence arrives.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_OPEN = re.compile(r" {0,3}(`{3,}(?=[^`]*$)|~{3,})")
_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*$")


class _Fence(NamedTuple):
    char: str
    length: int
    indent: int


class CodeBlocks:
    """Finds fenced code blocks in text that arrives in pieces."""

    def __init__(self) -> None:
        self._partial: list[str] = []
        self._fence: _Fence | None = None
        self._lines: list[str] = []
        self.blocks: list[str] = []  # the closed blocks' contents, in order

    def feed(self, text: str) -> list[str]:
        """Add a piece of the answer; return the blocks it closed."""
        closed: list[str] = []
        if "\n" not in text:
            self._partial.append(text)
            return closed
        lines = text.split("\n")
        lines[0] = "".join([*self._partial, lines[0]])
        self._partial = [lines.pop()]
        for line in lines:
            self._line(line.removesuffix("\r"), closed)
        self.blocks += closed
        return closed

    def end(self) -> str | None:
        """The answer is complete: the block it left open, if any (closed by the end)."""
        rest = "".join(self._partial)
        self._partial = []
        closed: list[str] = []
        if rest:
            self._line(rest.removesuffix("\r"), closed)
        self.blocks += closed
        if self._fence is None or not self._lines:  # an empty block left open is no block
            self._fence = None
            return None
        block = _content(self._lines)
        self.blocks.append(block)
        self._fence = None
        return block

    def _line(self, line: str, closed: list[str]) -> None:
        if self._fence is None:
            if match := _OPEN.match(line):
                fence = match[1]
                self._fence = _Fence(fence[0], len(fence), len(line) - len(line.lstrip(" ")))
                self._lines = []
            return
        match = _CLOSE.match(line)
        if match and match[1][0] == self._fence.char and len(match[1]) >= self._fence.length:
            closed.append(_content(self._lines))
            self._fence = None
            return
        self._lines.append(_dedent(line, self._fence.indent))


def _dedent(line: str, indent: int) -> str:
    """A fence indented N spaces takes up to N spaces off each line (CommonMark)."""
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def _content(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def get_code_blocks(text: str) -> list[str]:
    """Every fenced code block's content in `text`, in order."""
    blocks = CodeBlocks()
    blocks.feed(text)
    blocks.end()
    return blocks.blocks


def extract_code(text: str, *, last: bool = False) -> str | None:
    """The first (or last) fenced code block's content; None when there is none."""
    blocks = get_code_blocks(text)
    if not blocks:
        return None
    return blocks[-1] if last else blocks[0]
