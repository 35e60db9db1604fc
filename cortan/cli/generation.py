"""How the model should answer: thinking, a schema, generation options, images (``ask``).

Layer: cli. The flags of issue 16 turned into the fields of a ``ChatRequest``, each
checked before anything is read or sent, so a typo in ``-o`` or a bad schema is a
usage error (exit 2) with one sentence, never a request that silently ignores it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from cortan.core.errors import UsageError

if TYPE_CHECKING:
    from cortan.core.requests import ChatRequest, Think


class Generation(NamedTuple):
    """The model-facing flags of one ``ask``, checked."""

    think: Think = None
    schema: dict[str, Any] | None = None
    options: tuple[tuple[str, object], ...] = ()


def parse_think(value: str | None, no_think: bool) -> Think:
    """``--think LEVEL`` / ``--no-think`` as the request's ``think``."""
    if no_think and value is not None:
        raise UsageError("use either --think or --no-think, not both")
    if no_think:
        return False
    if value is None:
        return None
    from cortan.core.requests import parse_think as parse_word

    return parse_word(value)


def make_generation(
    think: str | None,
    no_think: bool,
    schema: str | None,
    options: list[str],
    max_tokens: int | None,
) -> Generation:
    """Every flag checked; the first that makes no sense is the UsageError."""
    from cortan.core.options import parse_options

    parsed = dict(parse_options(options))
    if max_tokens is not None:
        if max_tokens < 1:
            raise UsageError("--max-tokens must be at least 1")
        parsed["max_tokens"] = max_tokens
    loaded = None
    if schema is not None:
        from cortan.engine.schema import load_schema

        loaded = load_schema(schema)
    return Generation(parse_think(think, no_think), loaded, tuple(parsed.items()))


def apply_generation(request: ChatRequest, generation: Generation) -> ChatRequest:
    """The request with the flags' fields; options given here win over a role's."""
    return request._replace(
        think=generation.think if generation.think is not None else request.think,
        schema=generation.schema,
        options=(*request.options, *generation.options),
    )
