"""Slash commands on models: /model switches (checked against Ollama's list), /models lists.

A name is refused only when Ollama, whose list is the truth, does not have it; the
listing comes from the shell's background model cache (:mod:`cortan.shell.models_cache`),
with each host's circuit as this shell saw it.
"""

from __future__ import annotations

import asyncio
import difflib
from typing import TYPE_CHECKING

from cortan.core.errors import UsageError, pull_command
from cortan.core.messages import get_cut_listings
from cortan.core.text import make_visible

if TYPE_CHECKING:
    from cortan.engine.hosts import HostState
    from cortan.engine.routes import Route
    from cortan.shell.commands import Shell

#: Seconds /model waits for a model list before it takes a name unchecked.
LIST_WAIT = 3.0


async def do_model(repl: Shell, arg: str) -> None:
    if arg:
        route = repl.services.resolve(arg)  # raises on a bad name, a misspelt provider
        await check_listed(repl, route)
        repl.conversation.model = arg
        repl.dim(f"model: {route}")
        return
    repl.say(f"model: {repl.services.resolve(repl.conversation.model)}")


async def check_listed(repl: Shell, route: Route) -> None:
    """Refuse a model an Ollama server does not have, naming the nearest one it has.

    Only Ollama's list is the truth: an OpenAI-compatible server may answer to names
    it does not list (llama.cpp answers to any). The list is asked again before a
    refusal (the model may have been pulled since), and a list that is not there
    within LIST_WAIT seconds (the server is down, slow) leaves the name unchecked.
    """
    config = repl.services.settings.providers.get(route.provider)
    if config is None:
        return
    if config.kind != "ollama":
        _warn_unlisted(repl, route)
        return
    names = await get_listing(repl, route.provider)
    if names is not None and not has_model(names, route.model):
        repl.models.start()  # pulled since the list was fetched?
        names = await get_listing(repl, route.provider)
    if names is None or has_model(names, route.model):
        return
    nearest = difflib.get_close_matches(route.model, names, n=1, cutoff=0.5)
    hint = f"did you mean {route.provider + ':' + nearest[0]!r}? " if nearest else ""
    raise UsageError(
        f"{route.provider} has no model {route.model!r}; {hint}"
        f"(`{pull_command(route.provider, route.model)}` gets it; /models lists them)"
    )


def _warn_unlisted(repl: Shell, route: Route) -> None:
    """A name an OpenAI-compatible server does not list but lists one close to: kept
    (such a server may answer to it), with the near name said, where `gpt-4o-minx` was
    taken without a word. Only a list already in is read: this never waits."""
    names = repl.models.listing(route.provider) if repl.models.loaded.is_set() else None
    if not names or route.model in names:
        return
    nearest = difflib.get_close_matches(route.model, names, n=1, cutoff=0.8)
    if nearest:
        repl.dim(
            f"{route.provider} does not list {route.model!r}; did you mean "
            f"{route.provider + ':' + nearest[0]!r}? (kept: such a server may answer to it)"
        )


async def get_listing(repl: Shell, provider: str) -> list[str] | None:
    """``provider``'s model names once the list is in (None: not within LIST_WAIT, or failed)."""
    await asyncio.to_thread(repl.models.loaded.wait, LIST_WAIT)
    return repl.models.listing(provider)


def has_model(names: list[str], model: str) -> bool:
    """Whether Ollama serves ``model``: a name without a tag means ``:latest``."""
    return model in names or (":" not in model and f"{model}:latest" in names)


async def do_models(repl: Shell, arg: str) -> None:
    if not repl.models.loaded.is_set():
        repl.dim("fetching the model list…")
        await asyncio.to_thread(repl.models.loaded.wait, 30)
    models = repl.models.models
    for model in models:
        details = " · ".join(x for x in (model.family, model.parameter_size) if x)
        name = make_visible(f"{model.provider}:{model.name}")  # a name picked by what it shows
        repl.say(f"  {name}" + (f"  ({make_visible(details)})" if details else ""))
    for alias, target in repl.services.settings.aliases.items():
        repl.say(f"  {alias} → {target}")
    for provider, error in repl.models.errors.items():
        repl.dim(f"  {provider}: {error}")
    for cut in get_cut_listings(models):
        repl.dim(f"  {cut}")
    for host in repl.services.host_states():
        repl.dim("  " + describe_host(host))
    repl.models.start()  # refresh for next time


def describe_host(host: HostState) -> str:
    """One host's circuit as this shell saw it: state, failures, latency."""
    parts = [f"{host.provider} {host.url}", f"circuit {host.state.value}"]
    if host.failures:
        parts.append(f"{host.failures} failures")
    if host.reopens_in:
        parts.append(f"retried in {host.reopens_in:.0f} s")
    if host.latency is not None:
        parts.append(f"first token {host.latency:.2f} s")
    return " · ".join(parts)
