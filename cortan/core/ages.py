"""Ages a user types (``90d``, ``12h``, ``30m``, ``2w``): how long ago "old" starts.

Layer: core (stdlib only). ``cortan logs rm --older-than AGE`` reads one. A bare
number is refused rather than guessed at: ``--older-than 90`` could mean days to one
reader and minutes to another, and a guess the wrong way deletes months of logs.
"""

from __future__ import annotations

import re

from cortan.core.errors import UsageError
from cortan.core.text import make_visible

#: Seconds in each unit an age may be written in.
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest age taken: a century, past any store's first day (and any clock's error).
LONGEST_DAYS = 36500
_AGE = re.compile(r"(\d{1,12})([mhdw])")
_SAY_UNITS = "m minutes, h hours, d days, w weeks"


def parse_age(text: str, option: str = "--older-than") -> float:
    """The seconds ``text`` names, or a UsageError saying how an age is written.

    Whole numbers only, one unit, at least one and at most a century: ``-1d``,
    ``1e9d``, ``1.5d`` and ``d`` are not ages, and a bounded length keeps a hostile
    value from costing anything to read.
    """
    written = text.strip()
    match = _AGE.fullmatch(written) if len(written) <= 16 else None
    if match is None:
        shown = repr(make_visible(text[:40])) if written else "an empty one"
        raise UsageError(
            f"{option} takes an age as a whole number and a unit, such as 90d, 12h, 30m "
            f"or 2w ({_SAY_UNITS}), not {shown}"
        )
    seconds = int(match[1]) * UNITS[match[2]]
    if seconds == 0:
        raise UsageError(f"{option} takes an age of at least 1m; to remove everything, use --all")
    if seconds > LONGEST_DAYS * 86400:
        raise UsageError(f"{option} takes an age of at most {LONGEST_DAYS}d (a century)")
    return float(seconds)
