"""Routes: what a model name means, and which models stand in when it cannot answer.

Layer: engine. Pure look-ups over settings, shared by the model manager, ``cortan
models`` and the REPL.

Names resolve in this order: an alias (``[aliases] fast = "ollama:llama3.2"``),
then ``provider:model`` where ``provider`` is a configured provider, then a bare
model name on the default model's provider (so Ollama's own ``llama3.2:latest``
still means a model, not a provider). A prefix one typo away from a configured
provider (``opneai:gpt-4o``, ``Work:x``) is refused with the name meant, instead of
quietly becoming an Ollama model of that name (issue 21); ``ollama:opneai:gpt-4o``
still says the odd name on purpose. One typo, not two: the Ollama models ``llava``
and ``llama2`` are two edits from ``ollama``.

The fallback chain of a name is the name itself, then its own list from
``[fallbacks]`` (looked up by the name as asked, then by what it resolves to),
else the global ``fallback`` list. A model appears in a chain once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from cortan.core.errors import CortanError, UsageError

if TYPE_CHECKING:
    from cortan.config.settings import Settings

MAX_ALIAS_DEPTH = 8


class Route(NamedTuple):
    """Where a model name leads."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


class Router:
    """Resolves names and builds fallback chains from one Settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def resolve(self, name: str | None) -> Route:
        """The provider and model a user-facing name means (None: the default model)."""
        name = name or self._settings.default_model
        return self._resolve(name, depth=0, first=name)

    def _resolve(self, name: str, depth: int, first: str) -> Route:
        if depth > MAX_ALIAS_DEPTH:
            if self._loops(first):
                raise UsageError(f"alias {name!r} refers to itself in a loop")
            raise UsageError(
                f"alias {first!r} leads through more than {MAX_ALIAS_DEPTH} aliases: "
                "point it at a model"
            )
        if name in self._settings.aliases:
            return self._resolve(self._settings.aliases[name], depth + 1, first)
        prefix, sep, rest = name.partition(":")
        if sep and prefix in self._settings.providers:
            if not rest:
                raise UsageError(f"model name {name!r} has a provider but no model")
            return Route(prefix, rest)
        default = self.default_provider()
        if sep and rest and (meant := self._provider_meant(prefix)) is not None:
            known = ", ".join(self._settings.providers)
            raise UsageError(
                f"no provider named {prefix!r} (providers: {known}); did you mean "
                f"{meant + ':' + rest!r}? ({default}:{name} asks {default} for {name!r})"
            )
        return Route(default, name)

    def _provider_meant(self, prefix: str) -> str | None:
        """The configured provider ``prefix`` is one typo away from, if any."""
        for provider in self._settings.providers:
            if is_one_typo(prefix.lower(), provider.lower()):
                return provider
        return None

    def default_provider(self) -> str:
        prefix, sep, _ = self._settings.default_model.partition(":")
        if sep and prefix in self._settings.providers:
            return prefix
        alias = self._settings.aliases.get(self._settings.default_model, "")
        prefix, sep, _ = alias.partition(":")
        return prefix if sep and prefix in self._settings.providers else "ollama"

    def _loops(self, name: str) -> bool:
        """Whether following the aliases from ``name`` comes back to one already seen."""
        seen = set()
        while name in self._settings.aliases:
            if name in seen:
                return True
            seen.add(name)
            name = self._settings.aliases[name]
        return False

    def get_fallbacks(self, name: str | None) -> list[str]:
        """The names to try after ``name``, as configured (not yet resolved)."""
        asked = name or self._settings.default_model
        per_name = self._settings.fallbacks
        if asked in per_name:
            return list(per_name[asked])
        resolved = str(self.resolve(asked))
        if resolved in per_name:
            return list(per_name[resolved])
        return list(self._settings.fallback)

    def get_chain(self, name: str | None, *, fallback: bool = True) -> list[Route]:
        """The routes to try in order: the name itself, then its fallbacks."""
        chain = [self.resolve(name)]
        for entry in self.get_fallbacks(name) if fallback else []:
            try:
                route = self.resolve(entry)
            except CortanError as exc:
                raise UsageError(f"fallback {entry!r}: {exc}") from None
            if route not in chain:
                chain.append(route)
        return chain

    def leaves_machine(self, name: str | None, *, fallback: bool = True) -> bool:
        """Whether any model the request may reach is remote (for the secret guard:
        a fallback from a local model to a remote one takes the prompt along)."""
        providers = self._settings.providers
        return any(
            not providers[route.provider].is_local()
            for route in self.get_chain(name, fallback=fallback)
        )


def is_one_typo(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one edit: a letter changed, added,
    dropped, or two neighbours swapped (``opneai``, ``olama``, ``ollamma``)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        i = diffs[0]
        return len(diffs) == 2 and diffs[1] == i + 1 and (a[i], a[i + 1]) == (b[i + 1], b[i])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1 :]
