"""jsonschema's validator classes with every keyword within one check's bounds.

Layer: engine, under :mod:`cortan.engine.validation`. jsonschema has no budget of its
own, so :func:`bounded_class` counts each keyword it evaluates against the check's
(:mod:`cortan.engine.bounds`), and rewrites the keywords whose work a count cannot
bound, the ones that match patterns or recurse on their own:

- ``pattern``, ``patternProperties`` and ``additionalProperties`` match with ``regex``
  and a timeout (jsonschema uses ``re``, which has none);
- ``unevaluatedProperties`` and ``unevaluatedItems`` find what adjacent keywords
  evaluated by walking the schema themselves: jsonschema's walk matched
  ``patternProperties`` with ``re`` (days for ``^(a|aa)+$`` and 60 letters), followed
  ``$ref`` fanning out 2**n ways without a step counted (17.7 s for n = 20 under a
  deadline of 1 s), and looked each key up in a list (quadratic);
- ``uniqueItems`` compares items by a hashable form, not each with each (jsonschema's
  fallback for objects: 23 s for 4,000 of them).

Each rewrite keeps jsonschema's reading of the keyword, for every draft cortan takes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from cortan.core.text import shorten
from cortan.engine.bounds import search, spend

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

_Keyword = Callable[[Any, Any, Any, Mapping[str, Any]], Iterable[Any] | None]


@functools.cache
def bounded_class(base: type[Validator]) -> type[Validator]:
    """``base`` with every keyword counted, and the ones above rewritten."""
    from jsonschema import validators

    keywords = {name: _counted(check) for name, check in base.VALIDATORS.items()}
    for name, check in _REWRITTEN.items():
        if name in keywords:
            keywords[name] = _counted(check)
    bounded: type[Validator] = validators.extend(base, keywords)  # type: ignore[no-untyped-call]
    return bounded


def _counted(check: _Keyword) -> _Keyword:
    def keyword(validator: Any, value: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
        spend()
        yield from check(validator, value, instance, schema) or ()

    return keyword


def _error(message: str) -> Any:
    from jsonschema.exceptions import ValidationError

    return ValidationError(message)


def _named(keys: Iterable[Any]) -> str:
    """A few keys, for a sentence: the first five, each shortened."""
    return ", ".join(repr(shorten(str(key), 40)) for key in sorted(keys, key=str)[:5])


def _is_valid(validator: Any, instance: Any, schema: Any) -> bool:
    return next(validator.descend(instance, schema), None) is None


# -- patterns ----------------------------------------------------------------------------


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield _error(f"{shorten(instance, 80)!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = [
        key for key in instance
        if key not in known and not any(search(pattern, key) for pattern in patterns)
    ]  # fmt: skip
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        yield _error(f"Additional properties are not allowed ({_named(extras)} unexpected)")


# -- unevaluated* ------------------------------------------------------------------------


def _unevaluated_properties(validator: Any, rest: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    wrong = [
        key for key, value in instance.items()
        if key not in evaluated
        and next(validator.descend(value, rest, path=key, schema_path=key), None) is not None
    ]  # fmt: skip
    if wrong and rest is False:
        yield _error(f"Unevaluated properties are not allowed ({_named(wrong)} unexpected)")
    elif wrong:
        yield _error(
            "Unevaluated properties are not valid under the given schema "
            f"({_named(wrong)} unevaluated and invalid)"
        )


def _unevaluated_items(validator: Any, rest: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "array"):
        return
    evaluated = _evaluated_indexes(validator, instance, schema)
    wrong = [shorten(repr(item), 40) for i, item in enumerate(instance) if i not in evaluated]
    if wrong:
        yield _error(f"Unevaluated items are not allowed ({', '.join(wrong[:5])} unexpected)")


def _evaluated_keys(validator: Any, instance: Any, schema: Any) -> set[str]:
    """The keys of ``instance`` that ``schema``'s keywords evaluate (jsonschema's
    ``find_evaluated_property_keys_by_schema``), one step each call."""
    spend()
    if validator.is_type(schema, "boolean"):
        return set()
    keys: set[str] = set()
    for referred, target in _referred(validator, schema):
        keys |= _evaluated_keys(referred, instance, target)
    if validator.is_type(properties := schema.get("properties"), "object"):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (rest := schema.get(keyword)) is not None:
            keys.update(k for k, v in instance.items() if _is_valid(validator, v, rest))
    if validator.is_type(patterns := schema.get("patternProperties"), "object"):
        keys.update(k for k in instance if any(search(pattern, k) for pattern in patterns))
    for key, dependent in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys |= _evaluated_keys(validator, instance, dependent)
    for applied in _applied(validator, instance, schema):
        keys |= _evaluated_keys(validator, instance, applied)
    return keys


def _evaluated_indexes(validator: Any, instance: Any, schema: Any) -> set[int]:
    """The indexes of ``instance`` that ``schema``'s keywords evaluate (jsonschema's
    ``find_evaluated_item_indexes_by_schema``, both drafts), one step each call."""
    spend()
    if validator.is_type(schema, "boolean"):
        return set()
    items = schema.get("items")
    if "items" in schema and ("additionalItems" in schema or not isinstance(items, list)):
        return set(range(len(instance)))
    indexes = set(range(len(items))) if isinstance(items, list) else set()  # 2019-09
    for referred, target in _referred(validator, schema):
        indexes |= _evaluated_indexes(referred, instance, target)
    indexes.update(range(len(schema.get("prefixItems", ()))))
    for keyword in ("contains", "unevaluatedItems"):
        if keyword in schema:
            indexes.update(
                i for i, item in enumerate(instance) if _is_valid(validator, item, schema[keyword])
            )
    for applied in _applied(validator, instance, schema):
        indexes |= _evaluated_indexes(validator, instance, applied)
    return indexes


def _referred(validator: Any, schema: Any) -> Iterator[tuple[Any, Any]]:
    """The validator and schema each of ``schema``'s references leads to."""
    for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
        if keyword not in schema:
            continue
        if keyword == "$recursiveRef":
            from referencing.jsonschema import lookup_recursive_ref

            resolved = lookup_recursive_ref(validator._resolver)
        else:
            resolved = validator._resolver.lookup(schema[keyword])
        yield (
            validator.evolve(schema=resolved.contents, _resolver=resolved.resolver),
            (resolved.contents),
        )


def _applied(validator: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """The subschemas of ``allOf``, ``anyOf``, ``oneOf`` and ``if``/``then``/``else``
    that apply to ``instance``, whose evaluations count."""
    for keyword in ("allOf", "oneOf", "anyOf"):
        yield from (s for s in schema.get(keyword, ()) if _is_valid(validator, instance, s))
    if "if" in schema:
        if _is_valid(validator, instance, schema["if"]):
            yield schema["if"]
            if "then" in schema:
                yield schema["then"]
        elif "else" in schema:
            yield schema["else"]


# -- uniqueItems -------------------------------------------------------------------------


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    if not (unique and validator.is_type(instance, "array")):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _comparable(item)
        if key in seen:
            yield _error(f"{shorten(repr(instance), 80)} has non-unique elements")
            return
        seen.add(key)


_TRUE, _FALSE = object(), object()


def _comparable(value: Any) -> Any:
    """``value`` hashable, equal where jsonschema's ``equal`` says so: ``1`` is ``1.0``,
    ``true`` is not ``1``, and the order of an object's keys does not count."""
    if value is True or value is False:
        return _TRUE if value else _FALSE
    if isinstance(value, dict):
        return frozenset((key, _comparable(item)) for key, item in value.items())
    if isinstance(value, list):
        return tuple(_comparable(item) for item in value)
    return value


_REWRITTEN: dict[str, _Keyword] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
    "unevaluatedItems": _unevaluated_items,
    "uniqueItems": _unique_items,
}
