"""Appending a command that ran to the user's shell history, in that shell's format.

Layer: command (stdlib only). With ``[commands] history = true`` the command comes
back with the up arrow in the next shell (a running bash keeps its own list until it
reads the file again: ``history -n``, or ``shopt -s histappend`` to keep what others
wrote). The history file is the user's, so it is opened as cortan opens its own
private files (:mod:`cortan.core.files`): a symbolic link or anything but a regular
file is refused, never followed.

* bash: ``$HISTFILE`` or ``~/.bash_history``, one plain line;
* zsh: ``$HISTFILE`` or ``~/.zsh_history``; ``: <start>:0;<command>`` when the file
  already holds that EXTENDED_HISTORY form, else a plain line;
* fish: ``$XDG_DATA_HOME/fish/fish_history``, ``- cmd: <command>`` and ``when: <start>``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from cortan.core.files import NotPrivateFile, open_private

_ZSH_EXTENDED = re.compile(rb"^: \d+:\d+;", re.MULTILINE)


def history_file(shell: str, environ: Mapping[str, str]) -> Path | None:
    """Where ``shell`` keeps its history; None for a shell whose format cortan does not write."""
    home = Path(environ.get("HOME") or Path.home())
    if shell in ("bash", "zsh"):
        named = environ.get("HISTFILE")
        default = ".bash_history" if shell == "bash" else ".zsh_history"
        return Path(named) if named else home / default
    if shell == "fish":
        data = environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
        return Path(data) / "fish" / "fish_history"
    return None


def format_entry(shell: str, command: str, when: int, *, extended: bool = False) -> str:
    """The lines ``shell`` reads back as one entry for ``command``."""
    if shell == "fish":
        escaped = command.replace("\\", "\\\\").replace("\n", "\\n")
        return f"- cmd: {escaped}\n  when: {when}\n"
    if shell == "zsh":
        body = command.replace("\n", "\\\n")  # zsh joins a line ending in \ with the next
        return f": {when}:0;{body}\n" if extended else f"{body}\n"
    return command + "\n"


def append_history(
    shell: str, command: str, environ: Mapping[str, str] | None = None, now: float | None = None
) -> Path | None:
    """Append ``command``; the file written, or None for a shell cortan cannot write for.

    Raises NotPrivateFile (a link, a FIFO...) or OSError when it cannot be written.
    """
    path = history_file(shell, os.environ if environ is None else environ)
    if path is None:
        return None
    when = int(time.time() if now is None else now)
    extended = shell == "zsh" and _is_extended(path)
    if shell == "fish":
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "ab") as file:
        file.write(format_entry(shell, command, when, extended=extended).encode("utf-8"))
    return path


def _is_extended(path: Path) -> bool:
    """Whether the zsh history holds ``: start:elapsed;`` lines (its last 4 KiB says)."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except (OSError, NotPrivateFile):
        return False
    with os.fdopen(fd, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - 4096))
        return _ZSH_EXTENDED.search(file.read()) is not None
