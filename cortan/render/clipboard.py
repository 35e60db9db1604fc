"""Copying to the clipboard of the terminal cortan runs in, with OSC 52.

Layer: render (stdlib only), so that the shell's ``/copy`` and command mode's
"copy" send the same sequence. ``ESC ] 52 ; c ; <base64> BEL`` asks the terminal to
put the decoded text on the system clipboard: it works over SSH, where no clipboard tool
on this machine could reach the user's. The text goes as the model sent it (not
sanitised for display: a command copied must be the command), and base64 is why
that is safe: the payload is letters, digits, ``+``, ``/`` and ``=``, so nothing in
it can end the sequence or start another.

Not every terminal takes it (some ask, some refuse, some cap the size) and none
answers, so the shell says what it sent, not that it landed. tmux swallows it
unless ``set -g set-clipboard on``; with ``set -g allow-passthrough on`` the copy
wrapped in tmux's passthrough (``ESC P tmux; ... ESC \\``), sent beside it, reaches
the terminal outside. GNU screen is not handled.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import IO

#: The most a copy may hold, in UTF-8 bytes: terminals cap OSC 52 (xterm and kitty
#: at about 100 kB of base64 by default), and past the cap they drop it silently.
MAX_COPY_BYTES = 74_000


def make_osc52(text: str, *, tmux: bool = False) -> str:
    """The control sequence that puts ``text`` on the clipboard ("c")."""
    payload = base64.b64encode(text.encode()).decode("ascii")
    code = f"\x1b]52;c;{payload}\x07"
    if tmux:  # the same, passed through tmux to the terminal outside it
        code += "\x1bPtmux;" + code.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return code


def why_not(file: IO[str], env: Mapping[str, str]) -> str | None:
    """Why OSC 52 cannot be sent to ``file`` here, in words; None when it can."""
    try:
        terminal = file.isatty()
    except (OSError, ValueError):
        terminal = False
    if not terminal:
        return "the output is not a terminal"
    term = env.get("TERM", "")
    if term in ("", "dumb"):
        return f"TERM is {term or 'not set'}, so the terminal is not known to take OSC 52"
    return None


def copy_text(file: IO[str], text: str, env: Mapping[str, str]) -> None:
    """Send ``text`` to the terminal's clipboard (checked with `why_not` first)."""
    file.write(make_osc52(text, tmux="TMUX" in env))
    file.flush()
