"""The approval prompt on the terminal: a tool call shown, a person's answer read.

Layer: render (core and the standard library only). The approval gate asks through
an asker a front end hands it with each request (``ChatRequest.ask``); ``cortan
ask`` and the REPL both hand it the one made here. It talks to the controlling
terminal itself (``/dev/tty``), never stdout: the answer may be piped into a file
while the question is asked on the screen, and stdin may be the data being piped
in. With no terminal (cron, a pipeline with nobody at it, a test runner's pipes)
there is no asker, and the gate runs only what the config's allowlist names.

The answer is read without blocking the event loop (the terminal's descriptor is
watched), so Ctrl-C while the question waits stops the request as it does an answer.
Keys typed before the question was on the screen (a ``y`` and Enter pressed while
the model was still answering) are thrown away unread when it is asked, and the
person is told: an answer is only one given to a question they have seen.
The default is no: Enter alone, end of input, or anything unexpected refuses. A call
the judge found risky (it deletes files, runs as root, ...) is allowed only by a whole
word, as command mode runs a risky command only on ``yes``: one key slips too easily.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import TextIO

from cortan.core.actions import DENY, SHOWN_LIMIT, Answer, Asker, Review
from cortan.render.echo import typing_shown

#: What a lasting yes covers is said where it is given: for a tool, every call of it,
#: whatever its arguments; for a command, that command line only.
CHOICES = "[y] yes, once · [s] {what}, this session · [a] {what}, always · [N] no"
RISKY_CHOICES = "it is risky: type yes (once), session or always; anything else is no"
#: Single keys typed at a risky call before it is taken as a no.
RISKY_RETRIES = 2
_ANSWERS = {
    "y": "once",
    "yes": "once",
    "s": "session",
    "session": "session",
    "a": "always",
    "always": "always",
}


def open_terminal_asker(*streams: TextIO) -> Asker | None:
    """An asker on the controlling terminal, or None when there is none to ask on.

    ``streams`` (by default stdin and stderr) must include a terminal: a run whose
    every stream is redirected has nobody watching, even if a terminal is still its
    controlling one (a test runner, ``nohup``).
    """
    streams = streams or (sys.stdin, sys.stderr)
    if not any(_isatty(stream) for stream in streams):
        return None
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    return TerminalAsker(fd).ask


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def discard_typed_ahead(fd: int) -> int:
    """Throw away what was typed on the terminal at ``fd`` and not read yet; how many bytes.

    Called as a question is put: a ``y`` typed while the model was still answering
    (meant for the shell, or a guess) would otherwise answer a question nobody saw.
    Not a terminal (a pipe in tests, a file): nothing is thrown away.
    """
    try:
        import fcntl
        import struct
        import termios
    except ImportError:  # not POSIX: no terminal queue to flush
        return 0
    try:
        waiting = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        termios.tcflush(fd, termios.TCIFLUSH)
    except (OSError, termios.error):
        return 0
    return int(struct.unpack("i", waiting)[0])


#: Said when keys typed before a question were thrown away.
TYPED_AHEAD = "what was typed before this question was ignored: answer it now"


def format_review(review: Review) -> str:
    """The question as the person reads it: what asks, with what, and its risks.

    A line break in a command starts a line marked ``>`` under it, so the command's
    text cannot print lines that pass for the prompt's own (``  risk  none``,
    ``Allow? [y]``); text past :data:`SHOWN_LIMIT` is cut, saying how much, and the
    gate has made such a call risky (only a typed word allows it).
    """
    action = review.action
    what = "run a command" if action.command is not None else "call a tool"
    lines = [
        f"cortan: the model asks to {what}",
        f"  tool  {_visible(action.name)}",
    ]
    if action.command is not None:
        lines.append(f"  runs  {_visible(action.command)}")
    else:
        lines.append(f"  args  {_visible(action.text)}")
    lines.extend(f"  risk  {risk}" for risk in review.risks)
    return "\n".join(lines) + "\n"


def format_choices(review: Review) -> str:
    """The answers to a call with no risk, each lasting one saying what it covers."""
    action = review.action
    if action.command is not None:
        return CHOICES.format(what="this command")
    return CHOICES.format(what=f"any {_visible(action.name)[:64]} call")


def _visible(text: str) -> str:
    from cortan.core.text import make_visible

    shown = make_visible(text)
    more = ""
    if len(shown) > SHOWN_LIMIT:
        more = (
            f"\n        ({len(shown) - SHOWN_LIMIT} characters more not shown: say no unless sure)"
        )
        shown = shown[:SHOWN_LIMIT]
    return shown.replace("\n", "\n     >  ") + more


def parse_answer(text: str, review: Review) -> Answer:
    """A typed answer: y, s, a (or the words; only the words for a risky call); else no."""
    if _single_key_at_risk(text, review):
        return DENY
    scope = _ANSWERS.get(text.strip().lower())
    if scope is None:
        return DENY
    if scope == "once":
        return Answer(True, "once")
    # A session or always yes covers any arguments to this tool, but only this exact
    # command line for a command: a later command is shown and asked about anew.
    pattern = None if review.action.command is not None else "*"
    return Answer(True, "session" if scope == "session" else "always", pattern)


def _single_key_at_risk(text: str, review: Review) -> bool:
    """A one-key yes (y, s, a) to a call with risks: not enough to allow it."""
    return bool(review.risks) and text.strip().lower() in ("y", "s", "a")


class TerminalAsker:
    """Asks on the terminal at ``fd``, one question at a time."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = asyncio.Lock()

    async def ask(self, review: Review) -> Answer:
        async with self._lock:
            choices = RISKY_CHOICES if review.risks else format_choices(review)
            ignored = discard_typed_ahead(self._fd)
            self._write("\n" + format_review(review))
            if ignored:
                self._write(f"({TYPED_AHEAD})\n")
            self._write(f"Allow? {choices}: ")
            with typing_shown(self._fd):  # the answer streaming had echo off
                answer = await self._read_answer(review)
            return parse_answer(answer, review)

    async def _read_answer(self, review: Review) -> str:
        answer = ""
        for _ in range(RISKY_RETRIES + 1):
            line = await self._read_line()
            if line is None:
                self._write("\n")
                return ""  # end of input: no
            answer = line
            if not _single_key_at_risk(line, review):
                break
            self._write("a single key does not allow a risky call: type the word: ")
        return answer

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self._fd, text.encode("utf-8", errors="replace"))

    async def _read_line(self) -> str | None:
        """One line from the terminal, read when it is there; None at end of input."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()
        buffer = bytearray()

        def readable() -> None:
            try:
                data = os.read(self._fd, 1024)
            except OSError:
                data = b""
            if not data:
                if not done.done():
                    done.set_result(None)
                return
            buffer.extend(data)
            if b"\n" in buffer or len(buffer) > 4096:
                line = bytes(buffer).split(b"\n", 1)[0]
                if not done.done():
                    done.set_result(line.decode("utf-8", errors="replace"))

        loop.add_reader(self._fd, readable)
        try:
            return await done
        finally:
            loop.remove_reader(self._fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
