"""Prompt templates: ``"Classify this review: {text}"`` filled from each item's fields.

Layer: batch (a front end). The syntax is Python's ``str.format`` braces, narrowed
to what a data file needs and nothing an input could abuse: ``{name}`` is the field
of that name taken as it is spelt (``{first name}`` and ``{a.b}`` name a CSV column
or a JSON key, never an attribute or an index), ``{{`` and ``}}`` are braces.
Conversions and format specs (``{x!r}``, ``{x:>10}``) are refused when the template
is read, as is a field with no name, so a mistake is one usage error before any
item is sent, not one per item.

A text value goes in as it is; any other JSON value (a number, a list) as its JSON.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping

from cortan.core.errors import InputError, UsageError


class Template:
    """A parsed template; :meth:`render` fills it for one item."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise UsageError(f"the template cannot be read: {exc} ({{{{ writes a brace)") from None
        for literal, name, spec, conversion in parsed:
            if name is not None:
                _check_field(name, spec, conversion)
            self._parts.append((literal, name))
        if not self.fields:
            raise UsageError("the template names no field: put {name} where each item's goes")

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the template uses, in order, each once."""
        return tuple(dict.fromkeys(name for _, name in self._parts if name is not None))

    def render(self, values: Mapping[str, object], where: str) -> str:
        """The prompt for one item; InputError naming ``where`` for a field it lacks."""
        out: list[str] = []
        for literal, name in self._parts:
            out.append(literal)
            if name is None:
                continue
            if name not in values:
                raise InputError(f"{where} has no field {name!r} (the template uses it)")
            out.append(as_text(values[name]))
        return "".join(out)


def as_text(value: object) -> str:
    """A field's value as it goes into a prompt."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _check_field(name: str, spec: str | None, conversion: str | None) -> None:
    if not name.strip():
        raise UsageError("the template has an empty {}: name the field, as in {text}")
    if conversion or spec:
        extra = f"!{conversion}" if conversion else f":{spec}"
        raise UsageError(
            f"the template's {{{name}{extra}}} has a format the batch does not apply; "
            f"write {{{name}}}"
        )
