"""The secret scanner: finds likely credentials in text before it leaves the machine.

Layer: engine (stdlib only). The input validator calls :func:`scan` on every prompt,
piped input and attached file bound for a provider that is not local; the REPL calls
it to ask before sending; the log formatter calls :func:`redact` on every line.

A :class:`Finding` says *what* was found and *where* (the source's label and the line
number), never the value: the sentence a user reads, a log line and a test failure can
all be shown safely.

What counts as a likely secret (one pattern each, tuned on the installed packages'
sources and docs; ``tests/security/measure_false_positives.py`` measures them):

* private key blocks (``-----BEGIN … PRIVATE KEY-----`` followed by key material),
  and Google Cloud service-account JSON holding one;
* AWS access key ids (``AKIA…``, ``ASIA…``), and AWS secret keys where a label such as
  ``aws_secret_access_key`` names them; Google API keys (``AIza…``);
* OpenAI (``sk-…``, ``sk-proj-…``), Anthropic (``sk-ant-…``), GitHub (``ghp_``,
  ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), Slack (``xox…``) and Stripe
  live (``sk_live_``, ``rk_live_``) keys; JSON Web Tokens;
* ``.env``-style assignments to a name ending in ``PASSWORD``, ``SECRET``, ``TOKEN``,
  ``API_KEY`` and the like, when the value is a literal that looks like a real one:
  not empty, not a reference (``${VAR}``, ``$(cmd)``, ``os.environ[…]``), not code,
  not a placeholder (``changeme``, ``xxx``, ``<your-key>``).

Documented sample values (AWS's ``…EXAMPLE`` keys) and tokens made of one character
class (``sk-aaaa…``) are not findings. Everything here is linear in the length of the
text: every pattern starts with a literal or is anchored at a line start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Finding", "describe", "redact", "scan"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One likely secret: its kind (``aws_access_key``), a description, and where it is."""

    kind: str
    description: str  # "an AWS access key": names the kind, never the value
    label: str  # the source: "the prompt", "stdin", "file notes.txt"
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.label} line {self.line} looks like {self.description}"


Finder = Callable[[re.Pattern[str], str], Iterator[re.Match[str]]]


def _find_bounded(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches that start a word. (A leading ``\\b`` would stop ``re`` from skipping ahead
    to the literal prefix, and make the scan forty times slower.)"""
    for match in pattern.finditer(text):
        start = match.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
            yield match


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    description: str
    pattern: re.Pattern[str]
    accept: Callable[[re.Match[str], str], bool] = lambda match, text: True
    generic: bool = False  # skipped on a line a more specific rule (listed earlier) reported
    find: Finder = _find_bounded


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
        index = text.find(word)
        while index >= 0:
            end = index + len(word)
            start = text.rfind("\n", 0, index) + 1
            if start not in lines and _AFTER_NAME.match(text, end):
                lines.add(start)
                stop = text.find("\n", end)
                match = pattern.fullmatch(text, start, len(text) if stop < 0 else stop)
                if match is not None:
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


_RULES: tuple[_Rule, ...] = (
    _Rule(
        "gcp_service_account",
        "a Google Cloud service-account key",
        re.compile(r"\"private_key\"[ \t]*:[ \t]*\"-----BEGIN[ A-Z]{0,20}PRIVATE KEY-----"),
        _has_key_material,
    ),
    _Rule(
        "private_key",
        "a private key",
        re.compile(r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----"),
        _has_key_material,
        generic=True,
    ),
    _Rule(
        "aws_access_key",
        "an AWS access key",
        re.compile(r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z2-7]{16}\b"),
        _not_example,
    ),
    _Rule(
        "aws_secret_key",
        "an AWS secret key",
        re.compile(
            r"(?i:aws)[A-Za-z0-9_.-]{0,20}(?i:secret)[A-Za-z0-9_.-]{0,20}[\"']?[ \t]*[:=]{1,2}>?"
            r"[ \t]*[\"']?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        lambda m, t: _classes(m["value"]) >= 3 and "EXAMPLE" not in m["value"].upper(),
        find=_find_after("aws", "AWS", "Aws"),
    ),
    _Rule(
        "google_api_key",
        "a Google API key",
        re.compile(r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
        _random_looking,
    ),
    _Rule(
        "anthropic_key",
        "an Anthropic API key",
        re.compile(r"sk-ant-[A-Za-z0-9_-]{40,}"),
        _random_looking,
    ),
    _Rule(
        "openai_key",
        "an OpenAI API key",
        re.compile(r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{40,})"),
        _random_looking,
    ),
    _Rule(
        "github_token",
        "a GitHub token",
        re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
        _random_looking,
    ),
    _Rule(
        "slack_token",
        "a Slack token",
        re.compile(r"xox[abposre]-[0-9]{6,}-[A-Za-z0-9-]{10,}"),
        lambda m, t: not _repeats(m[0]),
    ),
    _Rule(
        "stripe_key",
        "a Stripe live key",
        re.compile(r"[sr]k_live_[A-Za-z0-9]{20,}"),
        _random_looking,
    ),
    _Rule(
        "jwt",
        "a JSON Web Token",
        re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
    ),
    _Rule(
        "assignment",
        "a secret assigned to {name}",
        _ASSIGNMENT,
        _secret_value,
        generic=True,
        find=_find_assignments,
    ),
)


# -- values of assignments ----------------------------------------------------------------

_PLACEHOLDER_WORDS = frozenset(
    """changeme change_me change-me changeit password passwd passphrase secret token
    apikey api_key api-key key example test testing tests dummy fake sample placeholder
    redacted hidden none null nil undefined empty default required optional todo tbd
    value mypassword yourpassword mysecret yoursecret mytoken yourtoken foo bar baz
    foobar admin root pass unset missing notset not_set false true""".split()
)
_PLACEHOLDER_PARTS = (
    "xxx", "***", "...", "…", "<", ">", "your_", "your-", "yourkey", "example",
    "placeholder", "changeme", "change_me", "replace", "insert", "dummy", "fake",
    "sample", "redacted", "enter_", "put_", "todo", "secret_here", "key_here",
)  # fmt: skip
_REFERENCE_STARTS = ("$", "%", "{", "[", "(", "!", "@", "&", "*", "env:", "vault:", "op://")
_IDENTIFIER_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_secret_value(raw: str) -> bool:
    """Whether the value of ``NAME=value`` looks like a real secret rather than code or a stub."""
    quoted = raw[:1] in "\"'" and len(raw) >= 2
    value = raw[1:-1] if quoted else raw
    lowered = value.lower()
    if len(value) < (6 if quoted else 8) or any(c.isspace() for c in value):
        return False
    if lowered in _PLACEHOLDER_WORDS or any(part in lowered for part in _PLACEHOLDER_PARTS):
        return False
    if value.startswith(_REFERENCE_STARTS) or "{{" in value or "${" in value or "(" in value:
        return False
    if _repeats(value):
        return False
    if quoted:
        return True
    if value.endswith((",", ";")) or any(c in value for c in "[]()"):
        return False  # code: an argument, an index, a call, a type annotation
    if _IDENTIFIER_PATH.fullmatch(value):  # settings.SECRET_KEY, os.environ.get
        return False
    if _IDENTIFIER.fullmatch(value):  # a name (code) unless it mixes letters and digits
        return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    return True


# -- the API ------------------------------------------------------------------------------


def scan(text: str, label: str) -> list[Finding]:
    """Every likely secret in ``text``, in line order, at most one per line and kind.

    Args:
        text: Decoded text (a prompt, piped input, a file).
        label: Names the source in findings: ``"the prompt"``, ``"stdin"``, ``"file x.env"``.
    """
    if not text:
        return []
    found: dict[tuple[int, str], Finding] = {}
    lines: set[int] = set()
    for rule in _RULES:
        for match in rule.find(rule.pattern, text):
            line = text.count("\n", 0, match.start()) + 1  # findings are rare: count lazily
            if (line, rule.kind) in found or (rule.generic and line in lines):
                continue  # a line is reported once per kind, by its most specific rule
            if rule.accept(match, text):
                found[(line, rule.kind)] = _finding(rule, match, label, line)
                lines.add(line)
    return sorted(found.values(), key=lambda f: (f.line, f.kind))


def _finding(rule: _Rule, match: re.Match[str], label: str, line: int) -> Finding:
    name = match.groupdict().get("name") or ""
    return Finding(rule.kind, rule.description.format(name=name), label, line)


def describe(findings: Iterable[Finding], *, shown: int = 2) -> str:
    """The first findings as one clause: ``stdin line 3 looks like an AWS access key``."""
    items = list(findings)
    text = " and ".join(str(f) for f in items[:shown])
    more = len(items) - shown
    return f"{text} (and {more} more)" if more > 0 else text


# -- redaction (for logs) -----------------------------------------------------------------

_REDACTED = "[redacted]"
# Logs may mask more than the scanner reports: a false positive costs nothing there.
_LOG_EXTRA = (
    re.compile(r"(?i)(\bbearer[ \t]+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(
        r"(?i)((?:api[_-]?key|token|secret|password|passwd|authorization|x-api-key)"
        r"[\"']?[ \t]*[:=][ \t]*[\"']?)(?!\[redacted\])[^\s\"',;}]{6,}"
    ),
)


def redact(text: str) -> str:
    """``text`` with everything that looks like a key replaced by ``[redacted]``."""
    text = _KEY_BLOCK.sub(lambda m: m[1] + _REDACTED + m[2], text)
    for rule in _RULES:
        if rule.kind in ("private_key", "gcp_service_account"):
            continue
        if "value" in rule.pattern.groupindex:
            text = rule.pattern.sub(_redact_value, text)
        else:
            text = rule.pattern.sub(_REDACTED, text)
    for pattern in _LOG_EXTRA:
        text = pattern.sub(lambda m: m[1] + _REDACTED, text)
    return text


def _redact_value(match: re.Match[str]) -> str:
    """Keep what names the secret (``DB_PASSWORD=``), mask the value."""
    return match[0][: match.start("value") - match.start()] + _REDACTED


# A key block loses its body, up to its END line or the end of the text.
_KEY_BLOCK = re.compile(
    r"(-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----)[\s\S]*?(-----END|\Z)"
)
