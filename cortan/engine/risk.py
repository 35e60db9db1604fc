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

A denial list is a speed bump, not the gate: a hostile model can always spell a
command so no pattern knows it (``$(printf '\\x72m')``). What the rules promise is
narrower: the common spellings that only hide a word (quotes inside it, a backslash,
``$IFS``) are judged as the word they spell, and such spelling is a risk in itself;
a shell reached by its path (``| /bin/sh``) or sourced (``. <(curl …)``) is one; and
what a person cannot read as it runs (a NUL, which no shell takes; a long run of
blanks; a space that is not one to the shell; a letter from another script that looks
like a Latin one) is said. The typed ``yes`` is the gate.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

_ROOTS = (
    r"(?:/|/\*|~|~/|~/\*|\$HOME/?\*?|\$\{HOME\}/?\*?|\"\$HOME\"/?"
    r"|/(?:home|etc|usr|var|bin|boot|lib|opt|root|srv)/?)"
)
_RM_FORCE_RECURSIVE = (
    r"\brm\s+(?:-{1,2}[\w-]+\s+)*?(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)\b[^;&|\n]*?"
)

#: Refused whatever anyone answers: each is a reason, said as it is refused.
_HARD = (
    (
        re.compile(rf"{_RM_FORCE_RECURSIVE}\s{_ROOTS}(?=\s|$|;|&|\||\)|`)"),
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
            r"|\b(?:rmtree|os\.remove|rmSync)\b"
        ),
        "deletes files",
    ),
    (re.compile(r"\b(?:sudo|doas|pkexec)\b|(?:^|[;&|]\s*)su(?:\s|$)"), "runs as root"),
    (
        re.compile(
            r"\|\s*(?:sudo\s+)?(?:env\s+)?(?:/[\w./-]*/)?(?:(?:ba|z|da|k|fi|c|tc)?sh|python[\d.]*|perl|ruby|node)\b"
            r"|(?:\b(?:ba|z)?sh|\bsource|(?:^|[;&|(]\s*)\.)\s+<\("
            r"|\b(?:ba|z|da|k)?sh\s+-c\s+\S*\$\(\s*(?:curl|wget)\b"
            r"|\b(?:curl|wget)\b[^;&|\n]*(?:&&|;)\s*(?:ba|z|da|k)?sh\s+[\w./~-]"
            r"|\beval\b"
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
            r"\bhistory\s+-\w*[cd]|\bunset\s+(?:-v\s+)?HIST|\bHIST(?:FILE|SIZE|FILESIZE)=|\bset\s+\+o\s+history\b"
            r"|\.(?:bash|zsh|sh)_history\b|\bfish_history\b"
        ),
        "erases or hides the shell history",
    ),
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


#: Spellings that hide a word from a reader and from the rules: quotes glued inside a
#: word (``r''m``, ``c"u"rl``), a backslash in a bare word (``r\\m``; not ``'\\n'``
#: in quotes), ``$IFS`` as a space,
#: ANSI-C escapes (``$'\\x72m'``).
_HIDING = re.compile(
    r"\w(?:''|\"\")|(?:''|\"\")\w|\w'\w+'\w|\w\"\w+\"\w|(?:^|[\s;&|(`])\w*\\[a-zA-Z]\w*(?=[\s;&|)`]|$)"
    r"|\$\{?IFS\b|\$'[^']*\\[xu0-7]"
)
_UNSPELL = re.compile(r"\$\{?IFS\}?|['\"\\]")
#: Blanks in a row past which a part of the command may be pushed out of sight.
BLANK_RUN = 40
_BLANKS = re.compile(rf"[ \t]{{{BLANK_RUN},}}")
#: What looks like a space but is a letter to a shell: NBSP, the typographic spaces.
_FAKE_SPACE = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_LOOKALIKE_SCRIPTS = ("CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "FULLWIDTH", "MATHEMATICAL")


def judge_command(command: str) -> CommandRisk:
    """The hard denial and the risks of ``command``, read from its text.

    The rules read it twice: as written, and with quotes, backslashes and ``$IFS``
    taken out (``r''m -rf '/'`` is judged as ``rm -rf /``).
    """
    text = " ".join(command.split())  # tabs and runs of spaces do not hide a pattern
    texts = (text, " ".join(_UNSPELL.sub(lambda m: " " if "IFS" in m[0] else "", text).split()))
    if "\x00" in command:
        return CommandRisk("it holds a NUL character, which no shell can run", ())
    denial = next(
        (reason for pattern, reason in _HARD if any(pattern.search(t) for t in texts)), None
    )
    risks = tuple(phrase for pattern, phrase in _RISKS if any(pattern.search(t) for t in texts))
    return CommandRisk(denial, risks + _unreadable(command))


def _unreadable(command: str) -> tuple[str, ...]:
    """What about ``command`` a person reading it on the screen could take for another."""
    risks: list[str] = []
    if "\n" in command.strip():
        risks.append("runs several lines")
    if _HIDING.search(command):
        risks.append("is spelt to hide what it runs (quotes inside a word, \\, $IFS, escapes)")
    if blanks := max((len(m[0]) for m in _BLANKS.finditer(command)), default=0):
        risks.append(f"holds {blanks} blanks in a row, which can push a part out of sight")
    if fake := _FAKE_SPACE.search(command):
        risks.append(
            f"holds U+{ord(fake[0]):04X}, which looks like a space but is not one to a shell"
        )
    if lookalike := _lookalike(command):
        risks.append(f"mixes in a letter that looks like a Latin one: {lookalike}")
    return tuple(risks)


def _lookalike(command: str) -> str | None:
    """The first letter from a script of Latin lookalikes in a word with Latin letters."""
    for word in re.findall(r"\w+", command):
        if word.isascii() or not any("a" <= c.lower() <= "z" for c in word):
            continue
        for char in word:
            name = unicodedata.name(char, "")
            if name.startswith(_LOOKALIKE_SCRIPTS):
                return f"U+{ord(char):04X} {name} in {word!r}"
    return None


def is_plain(command: str) -> bool:
    """True when ``command`` holds no shell operator, so a glob pattern may judge it."""
    return not SHELL_OPERATORS.intersection(command)
