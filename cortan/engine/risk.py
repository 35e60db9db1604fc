"""What a shell command could do that a person should stop and read.

Layer: engine (stdlib only). The approval gate (:mod:`cortan.engine.approval`) judges
every command before anyone is asked, whoever proposed it (command mode, the
``run_command`` tool): a short list of **hard denials** that no answer, grant or
allowlist can approve (wiping the root or home folder, making a file system, writing a
raw disk, a fork bomb), and **risks**, short phrases shown beside the command, which
make the prompt refuse Enter alone as an answer.

The rules read the command's text. They are a second pair of eyes, not a parser of
every shell: a command the rules miss is still shown whole and still asked about, with
"no" as the default answer. They err towards marking: a false mark costs one typed
letter, a missed one may cost a home folder.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ROOTS = (
    r"(?:/|/\*|~|~/|~/\*|\$HOME/?|\$\{HOME\}/?|\"\$HOME\"/?"
    r"|/(?:home|etc|usr|var|bin|boot|lib|opt|root|srv)/?)"
)
_RM_FORCE_RECURSIVE = (
    r"\brm\s+(?:-{1,2}[\w-]+\s+)*?(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)\b[^;&|\n]*?"
)

#: Refused whatever anyone answers: each is a reason, said as it is refused.
_HARD = (
    (
        re.compile(rf"{_RM_FORCE_RECURSIVE}\s{_ROOTS}(?=\s|$|;|&|\|)"),
        "it deletes the root, a system folder or the home folder recursively",
    ),
    (re.compile(r"--no-preserve-root\b"), "it deletes the root folder (--no-preserve-root)"),
    (re.compile(r"\bmkfs(?:\.\w+)?\b|\bmke2fs\b|\bwipefs\b"), "it makes or wipes a file system"),
    (
        re.compile(
            r"\b(?:dd|shred|cat|cp|tee)\b[^;&|\n]*(?:of=|>\s*|\s)/dev/(?:[sh]d[a-z]|nvme\d|vd[a-z]|xvd[a-z]|mmcblk\d|disk\d|mapper/)"
        ),
        "it writes over a raw disk",
    ),
    (
        re.compile(r">\s*/dev/(?:[sh]d[a-z]|nvme\d|vd[a-z]|xvd[a-z]|mmcblk\d|disk\d)"),
        "it writes over a raw disk",
    ),
    (
        re.compile(r"([\w:.]+)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1\s*&"),
        "it is a fork bomb",
    ),
    (
        re.compile(r"\b(?:chmod|chown|chgrp)\s+(?:-\w+\s+)*-\w*R\w*\s+(?:\S+\s+)?/(?:\s|$)"),
        "it changes the permissions of the whole file system",
    ),
)

#: Marked and asked about with an explicit answer: (pattern, phrase).
_RISKS = (
    (
        re.compile(
            r"\b(?:rm|rmdir|unlink|shred|srm|trash)\b|\bfind\b[^;&|\n]*\s-(?:delete|exec\s+rm)\b"
        ),
        "deletes files",
    ),
    (re.compile(r"\b(?:sudo|doas|pkexec)\b|(?:^|[;&|]\s*)su(?:\s|$)"), "runs as root"),
    (
        re.compile(
            r"\|\s*(?:sudo\s+)?(?:env\s+)?(?:ba|z|da|k|fi|c|tc)?sh\b|\|\s*(?:python\d?|perl|ruby|node)\b|\b(?:ba|z)?sh\s+<\(|\beval\b"
        ),
        "runs text it downloads or builds as code",
    ),
    (
        re.compile(r"\bgit\s+push\b[^;&|\n]*(?:\s--force(?:-with-lease)?\b|\s-f\b|\s\+\S)"),
        "force-pushes",
    ),
    (
        re.compile(
            r"\bgit\s+(?:reset\s+--hard|checkout\s+--?\s+\.|restore\s+\.|clean\s+-\w*[fdx])"
        ),
        "discards uncommitted work",
    ),
    (
        re.compile(r"\b(?:chmod|chown|chgrp)\s+(?:-\w+\s+)*(?:-\w*R|--recursive)\b"),
        "changes permissions recursively",
    ),
    (re.compile(r"(?<![>&\d])>(?![>&])(?!\s*/dev/null\b)|>\|"), "overwrites a file"),
    (re.compile(r"\bmv\b"), "moves or overwrites files"),
    (re.compile(r"\bsed\s+(?:-\w+\s+)*-\w*i|\bperl\s+-\w*i"), "edits files in place"),
    (re.compile(r"\b(?:dd|truncate|fallocate)\b"), "writes or resizes files at a low level"),
    (
        re.compile(
            r"(?:~|\$HOME|\$\{HOME\})/\.\w|/\.(?:ssh|aws|gnupg|kube|docker|config|netrc|git-credentials)\b|\.env\b|\.(?:bash|zsh)rc\b|\.profile\b|/etc/"
        ),
        "touches dotfiles, credentials or system settings",
    ),
    (re.compile(r"\b(?:kill|pkill|killall)\b"), "stops processes"),
    (
        re.compile(
            r"\b(?:shutdown|reboot|halt|poweroff)\b|\bsystemctl\s+(?:stop|disable|mask|poweroff|reboot)\b"
        ),
        "stops services or the machine",
    ),
    (re.compile(r"\bcrontab\s+-\w*r"), "deletes the crontab"),
    (
        re.compile(
            r"\b(?:curl|wget)\b[^|;&\n]*\s(?:-d|--data\S*|-F|--form|-T|--upload-file|-X\s*(?:POST|PUT|DELETE))\b"
        ),
        "sends data over the network",
    ),
)

#: Characters that join, redirect or substitute: an allowlist pattern never matches a
#: command holding one, so ``ls *`` cannot allow ``ls; rm -rf ~``.
SHELL_OPERATORS = frozenset(";&|<>`$()\n\r{}")


class CommandRisk(NamedTuple):
    """A command judged: the hard rule that refuses it, if any, and its risks."""

    denial: str | None
    risks: tuple[str, ...]


def judge_command(command: str) -> CommandRisk:
    """The hard denial and the risks of ``command``, read from its text."""
    text = " ".join(command.split())  # tabs and runs of spaces do not hide a pattern
    denial = next((reason for pattern, reason in _HARD if pattern.search(text)), None)
    risks = tuple(phrase for pattern, phrase in _RISKS if pattern.search(text))
    if "\n" in command.strip():
        risks += ("runs several lines",)
    return CommandRisk(denial, risks)


def is_plain(command: str) -> bool:
    """True when ``command`` holds no shell operator, so a glob pattern may judge it."""
    return not SHELL_OPERATORS.intersection(command)
