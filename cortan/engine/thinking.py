"""Reasoning written inline in the answer (``<think>...</think>``), split out as it streams.

Layer: engine. Servers that do not separate a thinking model's reasoning (an
OpenAI-compatible server without a reasoning parser, an older Ollama) send it in
the content, wrapped in ``<think>`` tags at the start of the answer. The tags may be
cut anywhere across pieces (``<thi`` + ``nk>``), so :class:`ThinkSplitter` holds back
only what could still be the start of a tag, and releases everything else at once:
the answer is never delayed by more than a tag's length.

Only a block that opens the answer (after whitespace) is reasoning: an answer that
talks about ``<think>`` tags later on stays the answer.
"""

from __future__ import annotations

from typing import NamedTuple

OPEN, CLOSE = "<think>", "</think>"


class Split(NamedTuple):
    """What one piece of content turned out to hold."""

    thinking: str
    answer: str


class ThinkSplitter:
    """Feed content pieces in order; get back the reasoning and the answer in them."""

    __slots__ = ("_held", "_state")

    def __init__(self) -> None:
        # start: nothing but whitespace yet; thinking; trim: the blank lines after the
        # block, which belong to neither; answer
        self._state = "start"
        self._held = ""

    def feed(self, piece: str) -> Split:
        if self._state == "answer":
            return Split("", piece)  # the hot path once the answer runs: no work
        text = self._held + piece
        self._held = ""
        if self._state == "start":
            return self._start(text)
        if self._state == "trim":
            return self._trim(text)
        return self._thinking(text)

    def flush(self) -> Split:
        """The end of the stream: whatever was held back is what it seemed."""
        held, self._held = self._held, ""
        if self._state == "thinking":
            return Split(held, "")
        return Split("", held)

    def _start(self, text: str) -> Split:
        stripped = text.lstrip()
        if stripped.startswith(OPEN):
            self._state = "thinking"
            return self._thinking(stripped[len(OPEN) :])
        if OPEN.startswith(stripped):  # whitespace, or a tag still arriving
            self._held = text
            return Split("", "")
        self._state = "answer"
        return Split("", text)

    def _thinking(self, text: str) -> Split:
        end = text.find(CLOSE)
        if end >= 0:
            return Split(text[:end], self._trim(text[end + len(CLOSE) :]).answer)
        keep = _partial_suffix(text, CLOSE)
        self._held = text[len(text) - keep :] if keep else ""
        return Split(text[: len(text) - keep], "")

    def _trim(self, text: str) -> Split:
        answer = text.lstrip("\n")
        self._state = "answer" if answer else "trim"
        return Split("", answer)


def _partial_suffix(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` could begin ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
