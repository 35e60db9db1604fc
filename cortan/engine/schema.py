"""Structured output: the schema a user gives, and whether an answer fills it.

Layer: engine. ``--schema`` takes a file, inline JSON, or a short form
(``'name str, age int, tags list[str]'``); :func:`load_schema` turns any of them
into a JSON Schema and checks it is one. The provider sends it in the wire's form
(Ollama ``format``, OpenAI ``response_format``), but a server may ignore it, so
``Chat.run`` checks every answer here with a real validator (jsonschema), asks the
model once to repair an answer that does not fit, and otherwise ends the request
with :class:`SchemaError` (exit code 3) and the raw answer kept.

A schema is data from a file or a batch line, so it is held to bounds: a file of at
most 1 MiB, nesting Python can follow, and the bounds every schema in cortan is held
to (``engine/validation.py``: no ``$ref`` fetched, patterns and checks within a
deadline). A check that cannot be done within them ends the request with
:class:`SchemaError` and the answer kept instead of an internal error or a hang.

jsonschema is imported only when a schema is used: it costs about 70 ms.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cortan.core.errors import CortanError, UsageError, why_unreadable
from cortan.engine.validation import check_schema


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
MAX_SCHEMA_BYTES = 1 << 20
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def load_schema(spec: str) -> dict[str, Any]:
    """A JSON Schema from a path, inline JSON, or the short form; UsageError if none."""
    text = spec.strip()
    if not text:
        raise UsageError("--schema is empty: give a file, JSON, or 'name str, age int'")
    path = Path(text)
    if not text.startswith(("{", "[")) and path.suffix == ".json":
        text = _read_schema_file(path, spec)
    if text.lstrip().startswith("{"):
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"the schema is not valid JSON: {exc.msg} at line {exc.lineno}"
            ) from None
        except RecursionError:
            raise UsageError("the schema nests objects or arrays too deeply") from None
        except ValueError:  # Python reads integers of at most 4300 digits
            raise UsageError("the schema holds a number too long to read") from None
    else:
        schema = parse_short_form(text)
    check_schema(schema)
    return schema  # type: ignore[no-any-return]


def _read_schema_file(path: Path, spec: str) -> str:
    from cortan.core.files import FileRefused, read_small_file

    try:
        return read_small_file(path, MAX_SCHEMA_BYTES).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = why_unreadable(exc)
    except FileRefused as exc:
        reason = f"it {exc}"
    raise UsageError(f"cannot read the schema file {spec!r}: {reason}")


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


def parse_answer(text: str, schema: dict[str, Any] | Any) -> tuple[Any, str | None]:
    """The answer as data, and None; or None and the sentence saying why it does not fit.

    Raises SchemaError when the answer cannot be checked at all: the schema's
    references cannot be followed or loop, so no repair by the model would help.
    """
    match = _FENCE.match(text)  # a model may fence its JSON despite being told not to
    try:
        data = json.loads(match[1] if match else text)
    except json.JSONDecodeError as exc:
        return None, f"the answer is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except RecursionError:
        return None, "the answer nests objects or arrays too deeply to be read"
    except ValueError:  # Python reads integers of at most 4300 digits
        return None, "the answer holds a number too long to read"
    error = _first_error(data, schema)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        return None, f"the answer does not fit the schema at {where}: {error.message}"
    return data, None


def _first_error(data: Any, schema: dict[str, Any] | Any) -> Any:
    """The validator's best error, or None; SchemaError when no check is possible."""
    from cortan.engine.validation import UncheckableError, first_error

    try:
        return first_error(data, schema)
    except UncheckableError as exc:
        raise SchemaError(f"the schema cannot be used: {exc}") from None


def repair_prompt(problem: str) -> str:
    """The one turn that asks the model to mend its answer."""
    return (
        f"Your answer could not be used: {problem}. Reply again with only the corrected "
        "JSON document, no prose and no code fences."
    )
