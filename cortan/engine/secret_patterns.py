"""What a likely secret looks like: the rules behind :mod:`cortan.engine.secrets`.

Layer: engine (stdlib only). Each rule is a pattern, a check on what it matched (a
real token mixes cases and digits; a sample says EXAMPLE), and how to find it. The
list, the reasons and the measured false-positive rate are in the scanner's docstring
and docs/security.md.

Speed: 1 MiB of source code scans in about 30 ms, and no input of that size takes more
than half a second. Every pattern starts with a literal that ``re`` can skip ahead to,
followed by a lookbehind that stops it from trying again inside one run of letters;
assignments are found by searching for the names' spellings first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

Finder = Callable[[re.Pattern[str], str], Iterator[re.Match[str]]]


def _find_all(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    return pattern.finditer(text)


class Rule(NamedTuple):
    kind: str
    description: str
    pattern: re.Pattern[str]
    accept: Callable[[re.Match[str], str], bool] = lambda match, text: True
    generic: bool = False  # skipped on a line a more specific rule (listed earlier) reported
    find: Finder = _find_all


# -- checks on candidate values -----------------------------------------------------------


def _classes(value: str) -> int:
    """How many of lower case, upper case and digits ``value`` mixes."""
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )


def _random_looking(match: re.Match[str], text: str) -> bool:
    """A real token mixes cases and digits; ``sk-aaaa…`` or ``ghp_xxxx…`` is a placeholder."""
    body = match[0]
    return _classes(body) >= 3 and "EXAMPLE" not in body.upper() and not _repeats(body)


def _repeats(value: str) -> bool:
    """Mostly one character (``xxxxxxxx``, ``00000000``): a placeholder."""
    return max(value.count(c) for c in set(value)) > len(value) // 2


def _not_example(match: re.Match[str], text: str) -> bool:
    return "EXAMPLE" not in match[0].upper()


_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/]{40,}")


def _has_key_material(match: re.Match[str], text: str) -> bool:
    """A header alone (a parser's constant, a docstring) is not a key: base64 must follow."""
    window = text[match.end() : match.end() + 600]
    window = window.split("-----END", 1)[0]
    if "EXAMPLE" in window or "..." in window:
        return False  # a documentation sample, shortened or marked
    return any(_classes(run) >= 3 for run in _KEY_MATERIAL.findall(window.replace("\\n", "\n")))


def _secret_value(match: re.Match[str], text: str) -> bool:
    return is_secret_value(match["value"])


# -- the rules ----------------------------------------------------------------------------

_NAME_END = (
    r"(?i:PASSWORD|PASSWD|PASSPHRASE|SECRET|SECRET_KEY|SECRET_ACCESS_KEY|TOKEN|AUTH_TOKEN"
    r"|ACCESS_TOKEN|API_KEY|APIKEY|API_TOKEN|ACCESS_KEY|PRIVATE_KEY|CLIENT_SECRET)"
)
_ASSIGNMENT = re.compile(
    r"[ \t]*(?:export[ \t]+)?"
    r"(?P<name>(?:[A-Za-z_][A-Za-z0-9_]*?)?" + _NAME_END + r")"
    r"[ \t]*(?:=|:(?=[ \t]))[ \t]*"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'#]+)"
    r"[ \t]*(?:#[^\n]*)?\r?"
)
_AFTER_NAME = re.compile(r"[ \t]*(?:=|:[ \t])")
_NAME_ENDINGS = tuple(
    spelling
    for word in ("password", "passwd", "passphrase", "secret", "token", "key")
    for spelling in (word, word.upper(), word.capitalize())
)


def _find_assignments(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Whole lines ``NAME=value`` where NAME ends in a secret's name.

    Searching for the names' literal spellings first and matching only the lines they
    end a name on keeps the scan at C speed; a case-insensitive regex over every line
    start is a hundred times slower.
    """
    lines: set[int] = set()
    for word in _NAME_ENDINGS:
        index, line_end = text.find(word), -1
        while index >= 0:
            end = index + len(word)
            if index > line_end and _AFTER_NAME.match(text, end):
                start = text.rfind("\n", 0, index) + 1
                line_end = text.find("\n", end) % (len(text) + 1)  # -1: the text's end
                if start not in lines:
                    lines.add(start)
                    if match := pattern.fullmatch(text, start, line_end):
                        yield match
            index = text.find(word, end)


def _find_after(*words: str) -> Finder:
    """A finder that tries ``pattern`` only where one of ``words`` occurs."""

    def find(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
        for word in words:
            index = text.find(word)
            while index >= 0:
                if match := pattern.match(text, index):
                    yield match
                index = text.find(word, index + 1)

    return find


# Put right after a pattern's literal prefix (N characters): the prefix starts a word.
# A lookbehind there, unlike a leading ``\\b``, lets ``re`` skip ahead to the prefix at C
# speed, and rejects every later start inside one long run of letters, which keeps the
# scan linear on hostile input such as ``eyJeyJeyJ…``.
_WORD_START = r"(?<![A-Za-z0-9_-].{{{0}}})"

RULES: tuple[Rule, ...] = (
    Rule(
        "gcp_service_account",
        "a Google Cloud service-account key",
        re.compile(r"\"private_key\"[ \t]*:[ \t]*\"-----BEGIN[ A-Z]{0,20}PRIVATE KEY-----"),
        _has_key_material,
    ),
    Rule(
        "private_key",
        "a private key",
        re.compile(r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----"),
        _has_key_material,
        generic=True,
    ),
    Rule(
        "aws_access_key",
        "an AWS access key",
        re.compile(
            r"(?:AKIA|ASIA|ABIA|ACCA)" + _WORD_START.format(4) + r"[A-Z2-7]{16}(?![A-Za-z0-9_])"
        ),
        _not_example,
    ),
    Rule(
        "aws_secret_key",
        "an AWS secret key",
        re.compile(
            r"(?i:aws)[A-Za-z0-9_.-]{0,20}(?i:secret)[A-Za-z0-9_.-]{0,20}[\"']?[ \t]*[:=]{1,2}>?"
            r"[ \t]*[\"']?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        lambda m, t: _classes(m["value"]) >= 3 and "EXAMPLE" not in m["value"].upper(),
        find=_find_after("aws", "AWS", "Aws"),
    ),
    Rule(
        "google_api_key",
        "a Google API key",
        re.compile(r"AIza" + _WORD_START.format(4) + r"[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
        _random_looking,
    ),
    Rule(
        "anthropic_key",
        "an Anthropic API key",
        re.compile(r"sk-ant-" + _WORD_START.format(7) + r"[A-Za-z0-9_-]{40,}"),
        _random_looking,
    ),
    Rule(
        "openai_key",
        "an OpenAI API key",
        re.compile(
            r"sk-"
            + _WORD_START.format(3)
            + r"(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{40,})"
        ),
        _random_looking,
    ),
    Rule(
        "github_token",
        "a GitHub token",
        re.compile(
            r"g"
            + _WORD_START.format(1)
            + r"(?:h[pousr]_[A-Za-z0-9]{36,}|ithub_pat_[A-Za-z0-9_]{40,})"
        ),
        _random_looking,
    ),
    Rule(
        "slack_token",
        "a Slack token",
        re.compile(r"xox" + _WORD_START.format(3) + r"[abposre]-[0-9]{6,}-[A-Za-z0-9-]{10,}"),
        lambda m, t: not _repeats(m[0]),
    ),
    Rule(
        "stripe_key",
        "a Stripe live key",
        re.compile(r"k_live_(?<![A-Za-z0-9_][sr]k_live_)(?<=[sr]k_live_)[A-Za-z0-9]{20,}"),
        _random_looking,
    ),
    Rule(
        "jwt",
        "a JSON Web Token",
        re.compile(
            r"eyJ"
            + _WORD_START.format(3)
            + r"[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{16,}"
        ),
    ),
    Rule(
        "assignment",
        "a secret assigned to {name}",
        _ASSIGNMENT,
        _secret_value,
        generic=True,
        find=_find_assignments,
    ),
)


# -- values of assignments ----------------------------------------------------------------

_PLACEHOLDER_WORDS = frozenset((
    "changeme", "change_me", "change-me", "changeit", "password", "passwd", "passphrase",
    "secret", "token", "apikey", "api_key", "api-key", "key", "example", "test", "testing",
    "dummy", "fake", "sample", "placeholder", "redacted", "hidden", "none", "null", "nil",
    "undefined", "empty", "default", "required", "optional", "todo", "tbd", "value",
    "mypassword", "yourpassword", "mysecret", "yoursecret", "mytoken", "yourtoken", "foo",
    "bar", "baz", "foobar", "admin", "root", "pass", "unset", "missing", "notset", "false",
))  # fmt: skip
_PLACEHOLDER_PARTS = (
    "xxx", "***", "...", "…", "<", ">", "your_", "your-", "yourkey", "example",
    "placeholder", "changeme", "change_me", "replace", "insert", "dummy", "fake",
    "sample", "redacted", "enter_", "put_", "todo", "secret_here", "key_here", "test",
    "password", "passwd",
)  # fmt: skip
_REFERENCE_STARTS = ("$", "%", "{", "[", "(", "!", "@", "&", "*", "env:", "vault:", "op://")
_IDENTIFIER_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_LIKE = re.compile(r"[A-Za-z]+(?:[-_.:/][A-Za-z]+)*")  # words and separators only


def is_secret_value(raw: str) -> bool:
    """Whether the value of ``NAME=value`` looks like a real secret rather than code or a stub.

    A secret has no spaces, is not a placeholder or a reference, and is not made of letters
    and separators only: ``'AWS_SECRET_ACCESS_KEY'``, ``"no-password-required"`` and
    ``OAuth2Token`` are names; ``s3cr3tP4ss`` and ``Tr0ub4dor&3`` are not.
    """
    quoted = raw[:1] in "\"'" and len(raw) >= 2
    value = raw[1:-1] if quoted else raw
    lowered = value.lower()
    if len(value) < (6 if quoted else 8) or any(c.isspace() for c in value):
        return False
    if lowered in _PLACEHOLDER_WORDS or any(part in lowered for part in _PLACEHOLDER_PARTS):
        return False
    if value.startswith(_REFERENCE_STARTS) or "{{" in value or "${" in value or "(" in value:
        return False
    if _repeats(value) or _NAME_LIKE.fullmatch(value):
        return False
    if not quoted and (value.endswith((",", ";")) or any(c in value for c in "[]()")):
        return False  # code: an argument, an index, a call, a type annotation
    if _IDENTIFIER.fullmatch(value):  # a name unless it mixes in digits, as passwords do
        return sum(c.isdigit() for c in value) >= 2
    return quoted or not _IDENTIFIER_PATH.fullmatch(value)  # settings.SECRET_KEY is code
