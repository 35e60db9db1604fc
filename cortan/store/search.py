"""Turning what a user types after ``-q`` into an FTS5 query that cannot fail.

Layer: store (stdlib only). FTS5 has its own query language (``AND``, ``NEAR(…)``,
``-col``, ``*``, quotes); text straight from a user would be read as that language
and fail with a syntax error, or match something else. Each word is therefore
quoted as a phrase (inner quotes doubled), and the phrases are joined, which FTS5
reads as "all of these". A word ending in ``*`` keeps its meaning as a prefix
search (``deploy*`` finds "deployment"); nothing else the user types is syntax.
"""

from __future__ import annotations

import re

_WORD_CHARS = re.compile(r"\w")


def make_match_query(text: str) -> str | None:
    """The FTS5 MATCH expression for ``text``, or None when it has no searchable words."""
    phrases = [_phrase(word) for word in text.split()]
    kept = [p for p in phrases if p]
    return " ".join(kept) or None


def _phrase(word: str) -> str:
    prefix = word.endswith("*")
    core = word.rstrip("*")
    if not _WORD_CHARS.search(core):
        return ""  # only punctuation: FTS5 would find no token in it anyway
    # FTS5 reads a NUL as the end of the query ("unterminated string"): make it a space.
    quoted = '"' + core.replace('"', '""').replace("\x00", " ") + '"'
    return quoted + "*" if prefix else quoted
