"""The secret scanner: finds likely credentials in text before it leaves the machine.

Layer: engine (stdlib only). The guard calls :func:`scan` on every prompt,
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

Documented sample values (AWS's ``…EXAMPLE`` keys, key blocks shortened with ``...``)
and tokens made of one character class (``sk-aaaa…``) are not findings.

The patterns live in :mod:`cortan.engine.secret_patterns`; 1 MiB scans in about 30 ms.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from typing import NamedTuple

from cortan.engine.secret_patterns import RULES, Rule

__all__ = ["Finding", "describe", "redact", "scan"]


class Finding(NamedTuple):
    """One likely secret: its kind (``aws_access_key``), a description, and where it is."""

    kind: str
    description: str  # "an AWS access key": names the kind, never the value
    label: str  # the source: "the prompt", "stdin", "file notes.txt"
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.label} line {self.line} looks like {self.description}"


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
    line_of = _LineIndex(text)
    for rule in RULES:
        for match in rule.find(rule.pattern, text):
            line = line_of(match.start())
            if (line, rule.kind) in found or (rule.generic and line in lines):
                continue  # a line is reported once per kind, by its most specific rule
            if rule.accept(match, text):
                found[(line, rule.kind)] = _finding(rule, match, label, line)
                lines.add(line)
    return sorted(found.values(), key=lambda f: (f.line, f.kind))


class _LineIndex:
    """Line numbers of offsets; the newlines are indexed on the first question only."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._newlines: list[int] | None = None

    def __call__(self, offset: int) -> int:
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self._text)]
        return bisect_right(self._newlines, offset) + 1


def _finding(rule: Rule, match: re.Match[str], label: str, line: int) -> Finding:
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
    for rule in RULES:
        if rule.kind in ("private_key", "gcp_service_account", "assignment"):
            continue  # key blocks above; assignments by the broader log patterns below
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
