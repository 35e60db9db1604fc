"""What a value is not, in cortan's words, from one of pydantic's validation errors.

Layer: config. Both the settings (a config file, a variable) and the command line
(Typer validates parameters with pydantic) are checked by pydantic, whose "Input
should be greater than or equal to 1" names neither the value nor what to type; a
NaN even read as "less than or equal to 86400". One table serves both.
"""

from __future__ import annotations

import math
from typing import Any

_NOT_A = {
    "string_type": "{input!r} is not text (quote it)",
    "int_type": "{input!r} is not a whole number",
    "float_type": "{input!r} is not a number",
    "bool_type": "{input!r} is neither true nor false",
    "list_type": "{input!r} is not a list",
    "tuple_type": "{input!r} is not a list",
    "dict_type": "{input!r} is not a table",
    "literal_error": "{input!r} is not one of {expected}",
    "missing": "it is required",
    "int_parsing": "{input!r} is not a whole number",
    "int_from_float": "{input!r} is not a whole number",
    "float_parsing": "{input!r} is not a number",
    "bool_parsing": "{input!r} is neither true nor false",
    "finite_number": "{input} is not a finite number",
    "greater_than_equal": "{input} is less than {ge}",
    "greater_than": "{input} is not more than {gt}",
    "less_than_equal": "{input} is more than {le}",
    "less_than": "{input} is not less than {lt}",
}


def say_what_is_wrong(error: Any) -> str:
    """One of ``ValidationError.errors()`` as a phrase (no capital, no full stop)."""
    kind, given, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])  # a check of cortan's own: its sentence as it is
    if kind == "extra_forbidden":
        return "unknown setting (see docs/configuration.md for the list)"
    if isinstance(given, float) and not math.isfinite(given):
        return f"{given} is not a finite number"
    phrase = _NOT_A.get(kind)
    if phrase is None:
        message = str(error["msg"]).removeprefix("Value error, ").rstrip(".")
        return message[:1].lower() + message[1:]
    bounds = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}
    return phrase.format(input=_Quoted(given), **bounds)


class _Quoted:
    """A value as the phrase shows it, cut short: a config file may hold a list of
    100,000 items where text belongs, and the sentence must stay one line."""

    WIDTH = 80

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return self._cut(reprlib_repr(self.value))

    def __format__(self, spec: str) -> str:
        return self._cut(format(self.value, spec))

    def _cut(self, text: str) -> str:
        from cortan.core.text import one_line

        return one_line(text, self.WIDTH)


def reprlib_repr(value: object) -> str:
    """``repr`` that stops early on big or deep containers (reprlib's limits, widened)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother = 4, 80, 80
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 8
    return short.repr(value)
