"""Generation options a user may set (``-o key=value``, roles, config): one list for all.

Layer: core. The names are cortan's own, the same for every provider; each
provider maps them to its wire (Ollama's ``options``, with ``max_tokens`` as
``num_predict``; the OpenAI-compatible body, where the extras that llama.cpp and
vLLM take go in ``extra_body``). A name not listed is refused with the list, so a
typo never silently does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from cortan.core.errors import UsageError


def _number(value: str) -> float:
    """A float that JSON can carry: NaN, Infinity and 1e999 went out as invalid JSON
    and came back as the server's "reply cortan cannot parse"."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _stops(value: str) -> list[str]:
    return [part for part in value.split(",") if part] or [value]


#: Every option, with how its text from the command line becomes a value.
OPTIONS: dict[str, Callable[[str], Any]] = {
    "temperature": _number,
    "top_p": _number,
    "top_k": int,
    "min_p": _number,
    "seed": int,
    "stop": _stops,
    "max_tokens": int,
    "num_ctx": int,
    "presence_penalty": _number,
    "frequency_penalty": _number,
    "repeat_penalty": _number,
}


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line as a checked (name, value) pair."""
    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise UsageError(f"option {text!r} is not key=value (for example -o temperature=0.2)")
    convert = OPTIONS.get(key)
    if convert is None:
        import difflib

        near = difflib.get_close_matches(key, OPTIONS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise UsageError(f"unknown option {key!r}{hint}; known: {', '.join(OPTIONS)}")
    try:
        return key, convert(raw.strip())
    except ValueError:
        kind = {"_number": "finite number", "int": "whole number"}.get(convert.__name__, "value")
        raise UsageError(f"option {key} needs a {kind}, not {raw.strip()!r}") from None
