"""JSON Schema checking within bounds: the one place cortan runs jsonschema.

Layer: engine. Schemas come from people and programs cortan does not control: ``ask
--schema``, a batch line, a gateway client's ``response_format`` or ``format``, an MCP
server's ``inputSchema``. Handed to jsonschema as they are, such a schema can hold the
process: a ``pattern`` that backtracks forever (``^(a+)+$``), ``$ref`` fanning out 2**n
ways (16 levels: 4.8 s and 396 MB for one short answer), a repeat count the regular
expression engine expands in memory (``a{4294967294}``), or a ``$ref`` to a URL that the
library would fetch with no timeout, contacting a host the user never configured.

So every caller goes through here, and the bounds are one set, not one per feature
(:mod:`cortan.engine.bounds` holds them, :mod:`cortan.engine.keywords` the keywords
rewritten to keep them):

- :func:`check_schema` refuses, before anything is asked, what is not a JSON Schema, a
  ``$ref`` to a URL the schema does not hold itself or to a place in it that is not
  there, a pattern ``regex`` would compile
  large (a count over ``MAX_REPEAT``, more than ``MAX_PATTERN_SIZE`` elements once
  written out), and a schema whose own check takes more than :data:`DEADLINE` seconds,
  as a :class:`~cortan.core.errors.UsageError` (exit 2; the gateway's 400).
- :func:`first_error` checks one document within :data:`DEADLINE` seconds and
  :data:`MAX_STEPS` keyword evaluations, matches patterns with the ``regex`` package's
  own timeout, and resolves references in a registry that refuses to retrieve anything.
  Past a bound it raises :class:`UncheckableError`; each caller decides what that means
  (``--schema``: exit 3 with the answer kept; a tool call: the tool decides).

Both are plain synchronous code whose time is bounded by the deadline (a thread cannot
be stopped from outside, so the bound is kept inside); async callers, the gateway's
check of a client's schema among them, run them on :mod:`cortan.engine.checks`' own
threads so that a second of checking never holds the event loop, nor other checks.
jsonschema and regex are imported only when a schema is used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from cortan.core.errors import UsageError
from cortan.core.text import shorten
from cortan.engine.bounds import (
    DEADLINE,
    MAX_STEPS,
    UncheckableError,
    budgeted,
    compile_pattern,
    spend,
)
from cortan.engine.keywords import bounded_class

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = ["UncheckableError", "check_schema", "first_error"]

_LITERAL_KEYS = frozenset({"const", "enum", "default", "examples"})  # data, not schema
_NAMING_KEYS = frozenset(  # objects whose keys are names, their values subschemas
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
)
_LATEST = "https://json-schema.org/draft/2020-12/schema"  # jsonschema's, with no $schema


def check_schema(schema: object) -> None:
    """Refuse, as a UsageError, a schema that is not one, that cortan will not follow, or
    that takes more than :data:`DEADLINE` to check (jsonschema's own check took 9.8 s for
    20,000 properties; a gateway client's body may hold 8 MiB of them)."""
    if not isinstance(schema, dict):
        raise UsageError("the schema must be a JSON object")
    if not isinstance(schema.get("$schema", ""), str):  # jsonschema's look-up failed on it
        raise UsageError("the schema's $schema must be a string: the URI of a JSON Schema draft")
    import jsonschema

    try:
        with budgeted(DEADLINE, MAX_STEPS * 10):  # a schema's nodes, not its fan-out
            _check_references(schema)
            _check_patterns(schema)
            _in_one_draft(schema)
            _check_against_metaschema(schema)
            _check_resolvable(schema)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"the schema is not a valid JSON Schema: {exc.message}") from None
    except RecursionError:
        raise UsageError("the schema nests objects or arrays too deeply") from None
    except UncheckableError as exc:
        raise UsageError(f"the schema cannot be used: {exc}") from None


def first_error(data: Any, schema: Mapping[str, Any]) -> ValidationError | None:
    """jsonschema's best error for ``data``, or None; UncheckableError past a bound."""
    import jsonschema
    from referencing.exceptions import Unresolvable

    try:
        with budgeted(DEADLINE, MAX_STEPS):
            schema = _in_one_draft(schema)
            validator = bounded_class(jsonschema.validators.validator_for(schema))(
                schema, registry=_registry()
            )
            error: ValidationError | None = jsonschema.exceptions.best_match(
                validator.iter_errors(data)
            )
            return error
    except Unresolvable as exc:
        anchor = getattr(exc, "anchor", None)  # "#nope": its ref is the document's, ''
        ref = shorten(f"#{anchor}" if anchor else str(exc.ref), 200)
        raise UncheckableError(f"its $ref {ref!r} leads nowhere") from None
    except RecursionError:
        raise UncheckableError("its references loop, or the document nests too deeply") from None
    except (jsonschema.SchemaError, TypeError, ValueError, OverflowError) as exc:
        raise UncheckableError(f"it is not a schema cortan can follow ({exc})") from None


def _in_one_draft(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` without the ``$schema`` of its subschemas: jsonschema checks a subschema
    that holds one with its own class for that draft, not the bounded one, so below it
    every bound was lost (days for a backtracking pattern). A subschema naming another
    draft than the top's is refused: cortan checks a schema in one draft."""
    if not any("$schema" in node for node in _subschemas(schema) if node is not schema):
        return schema
    stripped: Mapping[str, Any] = _without_draft(schema, _draft_of(schema), top=True)
    return stripped


def _without_draft(node: Any, draft: str, *, top: bool = False) -> Any:
    """A subschema (or a list of them) without ``$schema``, once it names ``draft``."""
    if isinstance(node, list):
        return [_without_draft(item, draft) for item in node]
    if not isinstance(node, dict):
        return node
    if not top and "$schema" in node and (named := _draft_of(node)) != draft:
        raise UncheckableError(
            f"it names two drafts ({shorten(draft, 80)!r} and, inside, {shorten(named, 80)!r}); "
            "cortan checks a schema in one"
        )
    return {k: _without_draft_in(k, v, draft) for k, v in node.items() if top or k != "$schema"}


def _without_draft_in(key: str, value: Any, draft: str) -> Any:
    if key in _LITERAL_KEYS or key == "$schema":
        return value
    if key in _NAMING_KEYS and isinstance(value, dict):
        return {name: _without_draft(subschema, draft) for name, subschema in value.items()}
    return _without_draft(value, draft)


def _draft_of(node: Mapping[str, Any]) -> str:
    return str(node.get("$schema", _LATEST)).rstrip("#")


def _check_against_metaschema(schema: dict[str, Any]) -> None:
    """jsonschema's ``check_schema``, with the keywords of the metaschema counted."""
    from jsonschema import SchemaError, validators

    draft = validators.validator_for(schema)
    meta = validators.validator_for(draft.META_SCHEMA, default=draft)
    registry = _metaschemas()
    root = registry.resolver().lookup(draft.META_SCHEMA["$schema"]).contents
    checker = bounded_class(meta)(root, registry=registry, format_checker=meta.FORMAT_CHECKER)
    if (error := next(checker.iter_errors(schema), None)) is not None:
        raise SchemaError.create_from(error)


@functools.cache
def _metaschemas() -> Any:
    """jsonschema's metaschemas, each without its ``$schema``: below one, jsonschema
    checks with its own class, not the bounded one (20,000 properties took 10 s, under a
    deadline of 1 s). The registry is ``jsonschema_specifications``', jsonschema's own."""
    from jsonschema_specifications import REGISTRY
    from referencing import Registry
    from referencing.jsonschema import specification_with

    def without_draft(uri: str) -> tuple[str, Any]:
        contents = REGISTRY[uri].contents
        kept = {key: value for key, value in contents.items() if key != "$schema"}
        return uri, specification_with(contents["$schema"]).create_resource(kept)

    return Registry().with_resources(without_draft(uri) for uri in REGISTRY).crawl()


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


def _check_resolvable(schema: dict[str, Any]) -> None:
    """Refuse a ``$ref`` or ``$dynamicRef`` that leads nowhere in the schema, before
    asking: :func:`first_error` found it only once the answer had come, and the model
    was asked for an answer nothing could check. Looked up as jsonschema looks them up
    (each against the ``$id`` of the subschema it is in); nothing is followed further,
    so a reference that loops is still :func:`first_error`'s to find.
    """
    from referencing.exceptions import Unresolvable

    for node, resolver in _scoped(schema):
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if not isinstance(ref, str):
                continue
            try:
                _check_no_loop(node, resolver.lookup(ref))
            except Unresolvable:
                raise UsageError(
                    f"the schema's {key} {shorten(ref, 200)!r} leads nowhere in it: "
                    "nothing it holds has that place, $id or anchor"
                ) from None


def _check_no_loop(node: dict[str, Any], resolved: Any) -> None:
    """Refuse a ``$ref`` whose chain of ``$ref`` leads back to where it began (``{"$ref":
    "#"}``, two ``$defs`` naming each other): checking any answer against it never ends.
    A reference through ``properties`` or ``items`` (a tree's schema) goes down into the
    answer, so it ends, and it is not followed here."""
    from referencing.exceptions import Unresolvable

    seen = {id(node)}
    while isinstance(resolved.contents, dict) and isinstance(resolved.contents.get("$ref"), str):
        spend()
        if id(resolved.contents) in seen:
            ref = shorten(str(node["$ref"] if "$ref" in node else node.get("$dynamicRef")), 200)
            raise UsageError(f"the schema's $ref {ref!r} leads back to itself: it never ends")
        seen.add(id(resolved.contents))
        try:
            resolved = resolved.resolver.lookup(resolved.contents["$ref"])
        except Unresolvable:
            return  # said of the $ref that leads nowhere itself, when its turn comes


def _scoped(schema: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Any]]:
    """Each subschema of ``schema`` with the resolver its references are looked up in
    (the one of the nearest ``$id`` around it), walked without recursion."""
    from jsonschema import validators
    from referencing.jsonschema import DRAFT202012, specification_with

    draft = validators.validator_for(schema)
    spec = specification_with(str(draft.META_SCHEMA.get("$schema", "")), default=DRAFT202012)
    stack: list[tuple[Any, Any]] = [
        (schema, _registry().resolver_with_root(spec.create_resource(schema)))
    ]
    while stack:
        spend()
        node, resolver = stack.pop()
        if isinstance(node, list):
            stack.extend((item, resolver) for item in node)
        elif isinstance(node, dict):
            if node is not schema and isinstance(node.get("$id", node.get("id")), str):
                resolver = resolver.in_subresource(spec.create_resource(node))
            yield node, resolver
            stack.extend((child, resolver) for child in _children(node))


def _children(node: dict[str, Any]) -> Iterator[Any]:
    """What may hold subschemas in ``node``: not literal data, and under ``properties``
    (and the like) the subschemas, not the object of names."""
    for key, value in node.items():
        if key in _LITERAL_KEYS:
            continue
        if key in _NAMING_KEYS and isinstance(value, dict):
            yield from value.values()
        else:
            yield value


def _check_patterns(schema: dict[str, Any]) -> None:
    """Refuse the patterns :func:`first_error` would not match: a sentence, before asking."""
    for pattern in _patterns(schema):
        spend()  # each compiles in milliseconds, thousands of them for minutes
        try:
            compile_pattern(pattern)
        except UncheckableError as exc:
            raise UsageError(f"the schema's pattern {shorten(pattern, 80)!r} {exc}") from None


def _patterns(schema: dict[str, Any]) -> Iterator[str]:
    for node in _subschemas(schema):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        if isinstance(node.get("patternProperties"), dict):
            yield from node["patternProperties"]


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every subschema in ``schema`` (not literal data, nor the objects of names under
    ``properties``), walked without recursion (its depth is the user's)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(_children(node))
        elif isinstance(node, list):
            stack.extend(node)


def _registry() -> Any:
    """Where ``$ref`` looks: nowhere but the schema itself; retrieval is refused."""
    from referencing import Registry

    return Registry(retrieve=_refuse)  # type: ignore[call-arg]


def _refuse(uri: str) -> NoReturn:
    raise LookupError(f"cortan fetches no schema from elsewhere ({uri})")
