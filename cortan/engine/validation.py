"""JSON Schema checking within bounds: the one place cortan runs jsonschema.

Layer: engine. Schemas come from people and programs cortan does not control: ``ask
--schema``, a batch line, a gateway client's ``response_format`` or ``format``, an MCP
server's ``inputSchema``. Handed to jsonschema as they are, such a schema can hold the
process: a ``pattern`` that backtracks forever (``^(a+)+$``), ``$ref`` fanning out 2**n
ways (16 levels: 4.8 s and 396 MB for one short answer), a repeat count the regular
expression engine expands in memory (``a{4294967294}``), or a ``$ref`` to a URL that the
library would fetch with no timeout, contacting a host the user never configured.

So every caller goes through here, and the bounds are one set, not one per feature:

- :func:`check_schema` refuses, before anything is asked, what is not a JSON Schema, a
  ``$ref`` to a URL the schema does not hold itself, and a pattern with a repeat count
  over :data:`MAX_REPEAT` (or nested repeats over :data:`MAX_REPEATS`), as a
  :class:`~cortan.core.errors.UsageError` (exit 2; the gateway's 400).
- :func:`first_error` checks one document within :data:`DEADLINE` seconds and
  :data:`MAX_STEPS` keyword evaluations, matches patterns with the ``regex`` package's
  own timeout, and resolves references in a registry that refuses to retrieve anything.
  Past a bound it raises :class:`UncheckableError`; each caller decides what that means
  (``--schema``: exit 3 with the answer kept; a tool call: the tool decides).

The checks are plain synchronous code whose time is bounded by the deadline; async
callers still run them in ``asyncio.to_thread`` so that a slow check never holds the
gateway's event loop. jsonschema and regex are imported only when a schema is used.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn

from cortan.core.errors import CortanError, UsageError
from cortan.core.text import shorten

if TYPE_CHECKING:
    import regex
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

DEADLINE = 1.0  # seconds to check one document
MAX_STEPS = 100_000  # keyword evaluations for one document (fan-out of $ref, anyOf, ...)
MAX_REPEAT = 1000  # the largest {n} a pattern may hold
MAX_REPEATS = 100_000  # the product of a pattern's repeat counts: regex expands them
_LITERAL_KEYS = frozenset({"const", "enum", "default", "examples"})  # data, not schema


class UncheckableError(CortanError):
    """A document could not be checked against a schema within cortan's bounds."""

    kind = "schema"


def check_schema(schema: object) -> None:
    """Refuse, as a UsageError, a schema that is not one or that cortan will not follow."""
    if not isinstance(schema, dict):
        raise UsageError("the schema must be a JSON object")
    import jsonschema

    try:
        _check_references(schema)
        _check_patterns(schema)
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"the schema is not a valid JSON Schema: {exc.message}") from None
    except RecursionError:
        raise UsageError("the schema nests objects or arrays too deeply") from None


def first_error(data: Any, schema: Mapping[str, Any]) -> ValidationError | None:
    """jsonschema's best error for ``data``, or None; UncheckableError past a bound."""
    import jsonschema
    from referencing.exceptions import Unresolvable

    token = _budget.set(_Budget(DEADLINE, MAX_STEPS))
    try:
        validator = _bounded_class(jsonschema.validators.validator_for(schema))(
            schema, registry=_registry()
        )
        error: ValidationError | None = jsonschema.exceptions.best_match(
            validator.iter_errors(data)
        )
        return error
    except Unresolvable as exc:
        ref = shorten(str(exc.ref), 200)
        raise UncheckableError(f"its $ref {ref!r} leads nowhere") from None
    except RecursionError:
        raise UncheckableError("its references loop, or the document nests too deeply") from None
    except (jsonschema.SchemaError, TypeError, ValueError, OverflowError) as exc:
        raise UncheckableError(f"it is not a schema cortan can follow ({exc})") from None
    finally:
        _budget.reset(token)


def _check_references(schema: dict[str, Any]) -> None:
    """Refuse a ``$ref`` to a URL the schema does not hold itself (an ``$id`` in it)."""
    from urllib.parse import urldefrag, urlsplit

    nodes = list(_subschemas(schema))
    ids = {urldefrag(node["$id"]).url for node in nodes if isinstance(node.get("$id"), str)}
    for node in nodes:
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if isinstance(ref, str) and urlsplit(ref).scheme and urldefrag(ref).url not in ids:
                raise UsageError(
                    f"the schema's {key} {shorten(ref, 200)!r} points outside it, and cortan "
                    "fetches no schema from elsewhere: copy what it names under $defs"
                )


def _check_patterns(schema: dict[str, Any]) -> None:
    """Refuse the patterns :func:`first_error` would not match: a sentence, before asking."""
    for pattern in _patterns(schema):
        try:
            _compile(pattern)
        except UncheckableError as exc:
            raise UsageError(f"the schema's pattern {shorten(pattern, 80)!r} {exc}") from None


def _patterns(schema: dict[str, Any]) -> Iterator[str]:
    for node in _subschemas(schema):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        if isinstance(node.get("patternProperties"), dict):
            yield from node["patternProperties"]


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object in ``schema`` but literal data, walked without recursion (its depth is
    the user's)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(v for k, v in node.items() if k not in _LITERAL_KEYS)
        elif isinstance(node, list):
            stack.extend(node)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> regex.Pattern[str]:
    """``pattern`` for the ``regex`` package, once its repeats are known to be bounded."""
    import regex

    _check_repeats(pattern)
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError) as exc:
        raise UncheckableError(f"is not a regular expression cortan can match: {exc}") from None


def _check_repeats(pattern: str) -> None:
    """Refuse huge ``{n}`` counts: regex expands them when compiling (no timeout applies)."""
    total = 1
    for digits in _repeat_counts(pattern):
        count = int(digits) if len(digits) <= 9 else MAX_REPEAT + 1  # 4300-digit ints raise
        if count > MAX_REPEAT:
            raise UncheckableError(
                f"repeats up to {shorten(digits, 20)} times; cortan matches at most {MAX_REPEAT}"
            )
        total *= max(count, 1)
        if total > MAX_REPEATS:
            raise UncheckableError(
                f"repeats more than {MAX_REPEATS} times in all; "
                f"cortan matches at most {MAX_REPEATS}"
            )


def _repeat_counts(pattern: str) -> Iterator[str]:
    """The digits of every ``{n}``, ``{n,}``, ``{,m}`` and ``{n,m}`` outside escapes and
    character classes."""
    index, end, in_class = 0, len(pattern), False
    while index < end:
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "{":
            close = pattern.find("}", index)
            body = pattern[index + 1 : close] if close > 0 else ""
            parts = body.split(",")
            if len(parts) <= 2 and any(parts) and all(p.isdigit() or not p for p in parts):
                yield from (p for p in parts if p)
        index += 1


class _Budget:
    """What one document's check may still spend: steps, and time until the deadline."""

    def __init__(self, seconds: float, steps: int) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.steps = steps

    def spend(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise UncheckableError(f"checking took more than {MAX_STEPS} steps")
        if time.monotonic() > self.deadline:
            raise UncheckableError(f"checking took more than {self.seconds:g} s")

    def left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)


# Set by first_error around one check; read by the keywords, which jsonschema calls
# with no room for a budget of their own. A context variable, so checks running side by
# side in threads each have theirs.
_budget: ContextVar[_Budget] = ContextVar("cortan_schema_budget")

_Keyword = Callable[[Any, Any, Any, Mapping[str, Any]], Iterable[Any] | None]


@functools.cache
def _bounded_class(base: type[Validator]) -> type[Validator]:
    """``base`` with every keyword counted and the pattern keywords bounded in time."""
    from jsonschema import validators

    keywords = {name: _counted(check) for name, check in base.VALIDATORS.items()}
    for name, check in _PATTERN_KEYWORDS.items():
        if name in keywords:
            keywords[name] = _counted(check)
    bounded: type[Validator] = validators.extend(base, keywords)  # type: ignore[no-untyped-call]
    return bounded


def _counted(check: _Keyword) -> _Keyword:
    def keyword(validator: Any, value: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
        _budget.get().spend()
        yield from check(validator, value, instance, schema) or ()

    return keyword


def _search(pattern: str, text: str) -> bool:
    try:
        return _compile(pattern).search(text, timeout=_budget.get().left()) is not None
    except TimeoutError:
        raise UncheckableError(
            f"matching the pattern {shorten(pattern, 80)!r} took too long"
        ) from None


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{shorten(instance, 80)!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Any) -> Any:
    """jsonschema's own keyword, with the patterns of ``patternProperties`` bounded."""
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = [
        key for key in instance
        if key not in known and not any(_search(pattern, key) for pattern in patterns)
    ]  # fmt: skip
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        named = ", ".join(repr(shorten(key, 40)) for key in sorted(extras)[:5])
        yield ValidationError(f"Additional properties are not allowed ({named} unexpected)")


_PATTERN_KEYWORDS: dict[str, _Keyword] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


def _registry() -> Any:
    """Where ``$ref`` looks: nowhere but the schema itself; retrieval is refused."""
    from referencing import Registry

    return Registry(retrieve=_refuse)  # type: ignore[call-arg]


def _refuse(uri: str) -> NoReturn:
    raise LookupError(f"cortan fetches no schema from elsewhere ({uri})")
