"""Structured output: the schema a user gives, and whether an answer fills it.

Layer: engine. ``--schema`` takes a file, inline JSON, or a short form
(``'name str, age int, tags list[str]'``); :func:`load_schema` turns any of them
into a JSON Schema and checks it is one. The provider sends it in the wire's form
(Ollama ``format``, OpenAI ``response_format``), but a server may ignore it, so
``Chat.run`` checks every answer here with a real validator (jsonschema), asks the
model once to repair an answer that does not fit, and otherwise ends the request
with :class:`SchemaError` (exit code 3) and the raw answer kept.

jsonschema is imported only when a schema is used: it costs about 70 ms.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cortan.core.errors import CortanError, UsageError, why_unreadable


class SchemaError(CortanError):
    """The answer is not JSON that fills the schema, even after one repair."""

    exit_code = 3
    kind = "schema"


_TYPES = {
    "str": {"type": "string"},
    "string": {"type": "string"},
    "int": {"type": "integer"},
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
}
_FIELD = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?::\s*|\s+)?([\w\[\]]*)\s*$")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def load_schema(spec: str) -> dict[str, Any]:
    """A JSON Schema from a path, inline JSON, or the short form; UsageError if none."""
    text = spec.strip()
    if not text:
        raise UsageError("--schema is empty: give a file, JSON, or 'name str, age int'")
    path = Path(text)
    if not text.startswith(("{", "[")) and path.suffix == ".json":
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = why_unreadable(exc)
            raise UsageError(f"cannot read the schema file {spec!r}: {reason}") from None
    if text.lstrip().startswith("{"):
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"the schema is not valid JSON: {exc.msg} at line {exc.lineno}"
            ) from None
    else:
        schema = parse_short_form(text)
    check_schema(schema)
    return schema  # type: ignore[no-any-return]


def parse_short_form(text: str) -> dict[str, Any]:
    """``'name str, age int, tags list[str]'`` as an object schema; every field required."""
    properties: dict[str, Any] = {}
    for part in text.split(","):
        match = _FIELD.match(part)
        if match is None or not match[1]:
            raise UsageError(f"cannot read {part.strip()!r} in the schema: write 'name type'")
        properties[match[1]] = _field_type(match[2] or "str", part.strip())
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _field_type(kind: str, part: str) -> dict[str, Any]:
    inner = re.fullmatch(r"list\[(\w+)\]", kind)
    if inner:
        return {"type": "array", "items": _field_type(inner[1], part)}
    if kind == "list":
        return {"type": "array"}
    if kind not in _TYPES:
        known = "str, int, float, bool, list[...]"
        raise UsageError(f"unknown type {kind!r} in {part!r}; known: {known}")
    return dict(_TYPES[kind])


def check_schema(schema: object) -> None:
    """Refuse what is not a JSON Schema, with the validator's own reason."""
    if not isinstance(schema, dict):
        raise UsageError("the schema must be a JSON object")
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"the schema is not a valid JSON Schema: {exc.message}") from None


def parse_answer(text: str, schema: dict[str, Any] | Any) -> tuple[Any, str | None]:
    """The answer as data, and None; or None and the sentence saying why it does not fit."""
    import jsonschema

    match = _FENCE.match(text)  # a model may fence its JSON despite being told not to
    try:
        data = json.loads(match[1] if match else text)
    except json.JSONDecodeError as exc:
        return None, f"the answer is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(data)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        return None, f"the answer does not fit the schema at {where}: {error.message}"
    return data, None


def repair_prompt(problem: str) -> str:
    """The one turn that asks the model to mend its answer."""
    return (
        f"Your answer could not be used: {problem}. Reply again with only the corrected "
        "JSON document, no prose and no code fences."
    )
