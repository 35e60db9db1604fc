"""Appending a command that ran to the user's shell history, in that shell's format.

Layer: command (stdlib only). With ``[commands] history = true`` the command comes
back with the up arrow in the next shell (a running bash keeps its own list until it
reads the file again: ``history -n``, or ``shopt -s histappend`` to keep what others
wrote). The history file is the user's, so it is opened as cortan opens its own
private files (:mod:`cortan.core.files`): a symbolic link or anything but a regular
file is refused, never followed.

* bash: ``$HISTFILE`` or ``~/.bash_history``, one plain line, under a ``#<start>``
  line when the file already holds such timestamps (``HISTTIMEFORMAT``); a command of
  several lines only then (a plain file makes each line an entry of its own);
* zsh: ``$HISTFILE`` or ``~/.zsh_history``; ``: <start>:0;<command>`` when the file
  already holds that EXTENDED_HISTORY form (or the command itself starts so), else a
  plain line; bytes zsh reserves for its own tokens (0x83 to 0xA2, inside many UTF-8
  characters, ``—`` among them) are "metafied" as zsh writes them;
* fish: ``$XDG_DATA_HOME/fish/fish_history``, ``- cmd: <command>`` and ``when: <start>``.

A command the shell would read back as something else (more entries, another entry
joined to it) is not written: :class:`HistoryRefused` says why, and the caller warns.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from cortan.core.files import NotPrivateFile, open_private

_STAMPED = {
    "zsh": re.compile(rb"^: \d+:\d+;", re.MULTILINE),
    "bash": re.compile(rb"^#\d+$", re.MULTILINE),
}
_ZSH_META = 0x83  # zsh's Meta byte; it and its tokens, up to Marker (0xA2), are escaped


class HistoryRefused(ValueError):
    """The command cannot be written so that the shell reads back exactly it."""


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


def format_entry(shell: str, command: str, when: int, *, extended: bool = False) -> bytes:
    """The bytes ``shell`` reads back as one entry for ``command``.

    ``extended``: the file keeps start times (zsh's EXTENDED_HISTORY, bash's
    ``#<start>`` lines). Raises HistoryRefused for a command the shell would read back
    as something else.
    """
    if shell == "fish":
        escaped = command.replace("\\", "\\\\").replace("\n", "\\n")
        return f"- cmd: {escaped}\n  when: {when}\n".encode()
    if shell == "zsh":
        return _zsh_entry(command, when, extended=extended)
    if "\n" in command:
        if not extended:
            raise HistoryRefused(
                "bash's history file holds one line per command unless it keeps times "
                "(HISTTIMEFORMAT), and this command has several lines"
            )
        if _STAMPED["bash"].search(command.encode()):
            raise HistoryRefused("a line of the command would read as a bash timestamp")
    stamp = f"#{when}\n" if extended else ""
    return f"{stamp}{command}\n".encode()


def _zsh_entry(command: str, when: int, *, extended: bool) -> bytes:
    if command.split("\n")[-1].endswith("\\"):
        raise HistoryRefused("zsh would join the next entry to a command ending in \\")
    if not extended and _STAMPED["zsh"].match(command.encode()):
        extended = True  # a plain `: 1:0;ls` line would come back as `ls`
    body = command.replace("\n", "\\\n")  # zsh joins a line ending in \ with the next
    line = f": {when}:0;{body}\n" if extended else f"{body}\n"
    return _metafy(line.encode("utf-8"))


def _metafy(data: bytes) -> bytes:
    """zsh's on-disk form: each byte 0x83..0xA2 as Meta then the byte xor 32."""
    out = bytearray()
    for byte in data:
        if _ZSH_META <= byte <= 0xA2:
            out += bytes((_ZSH_META, byte ^ 32))
        else:
            out.append(byte)
    return bytes(out)


def append_history(
    shell: str, command: str, environ: Mapping[str, str] | None = None, now: float | None = None
) -> Path | None:
    """Append ``command``; the file written, or None for a shell cortan cannot write for.

    Raises NotPrivateFile (a link, a FIFO...) or OSError when it cannot be written,
    HistoryRefused when the shell would read it back as something else.
    """
    path = history_file(shell, os.environ if environ is None else environ)
    if path is None:
        return None
    when = int(time.time() if now is None else now)
    entry = format_entry(shell, command, when, extended=_is_extended(shell, path))
    if shell == "fish":
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "ab") as file:
        file.write(entry)
    return path


def _is_extended(shell: str, path: Path) -> bool:
    """Whether the history keeps start times: zsh's ``: start:elapsed;`` lines, bash's
    ``#start`` lines (its last 4 KiB says)."""
    stamped = _STAMPED.get(shell)
    if stamped is None:
        return False
    try:
        fd = open_private(path, os.O_RDONLY)
    except (OSError, NotPrivateFile):
        return False
    with os.fdopen(fd, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - 4096))
        return stamped.search(file.read()) is not None
