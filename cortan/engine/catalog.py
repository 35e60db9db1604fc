"""What every provider offers: one survey of every host, for ``/models``, ``models`` and ``doctor``.

Layer: engine. The REPL's ``/models`` (and its completion), ``cortan models`` and
``cortan doctor`` all ask the same question, so they share one answer:
:func:`survey_hosts` asks every host of the named providers for its models at
once, through the model manager (so each outcome counts for that host's breaker,
as a prompt's would), within a deadline per host; :func:`by_provider` reduces the
reports to one result per provider, the models of its first host that answered or
the first host's error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from cortan.core.errors import CortanError, ProviderTimeoutError, UsageError
from cortan.core.messages import ModelInfo

if TYPE_CHECKING:
    from cortan.engine.hosts import Host, HostPool
    from cortan.engine.manager import ModelManager
    from cortan.providers.base import Provider

#: One provider's models, or why there are none.
Listing = list[ModelInfo] | CortanError


class HostReport(NamedTuple):
    """What one host answered (or why it did not), and how long it took."""

    provider: str
    url: str
    models: list[ModelInfo] | None
    error: CortanError | None
    latency: float
    version: str | None = None


async def survey_hosts(
    manager: ModelManager, names: Sequence[str], *, limit: float, versions: bool = False
) -> list[HostReport]:
    """Every host of every named provider, asked at once; ``versions`` asks their version too.

    A name that is not a configured provider is one report with a UsageError.
    """
    jobs = []
    for name in names:
        try:
            pool = manager.get_pool(name)
        except CortanError as exc:
            jobs.append(_refused(name, exc))
            continue
        for host in pool.hosts:
            # Every provider is made before any host is timed: made inside the probes, the
            # openai SDK's import (0.3-0.6 s) blocked the loop while Ollama's clock ran, and
            # `doctor` showed a loopback Ollama answering in 835 ms.
            try:
                provider = pool.get_provider(host)
            except CortanError as exc:
                jobs.append(_refused(name, exc, host.url))
                continue
            jobs.append(_probe(manager, pool, host, provider, limit, versions))
    return list(await asyncio.gather(*jobs))


def by_provider(names: Sequence[str], reports: Sequence[HostReport]) -> dict[str, Listing]:
    """Each provider's models from its first host that answered, else its first error."""
    results: dict[str, Listing] = {}
    for name in names:
        mine = [r for r in reports if r.provider == name]
        answered = next((r.models for r in mine if r.models is not None), None)
        error = next((r.error for r in mine if r.error is not None), None)
        if answered is not None:
            results[name] = answered
        else:
            results[name] = error or UsageError(f"no provider named {name!r} is configured")
    return results


async def gather_models(
    manager: ModelManager, names: Sequence[str], *, limit: float
) -> dict[str, Listing]:
    """One result per provider: what ``/models`` and ``cortan models`` show."""
    return by_provider(names, await survey_hosts(manager, names, limit=limit))


#: Models asked about at once when the details of a listing are filled in.
DESCRIBE_AT_ONCE = 8


async def describe(manager: ModelManager, listing: dict[str, Listing]) -> dict[str, Listing]:
    """The listing with what each server says of each model: window, capabilities.

    One ``show`` per model, a few at a time, cached by the manager; a model its
    server will not describe keeps what the list said.
    """
    gate = asyncio.Semaphore(DESCRIBE_AT_ONCE)

    async def one(model: ModelInfo) -> ModelInfo:
        async with gate:
            try:
                shown = await manager.show_model(f"{model.provider}:{model.name}")
            except CortanError:
                return model
        return model._replace(
            context_length=shown.context_length or model.context_length,
            capabilities=shown.capabilities,
            quantization=shown.quantization,
        )

    described: dict[str, Listing] = {}
    for name, result in listing.items():
        if isinstance(result, list):
            described[name] = list(await asyncio.gather(*(one(m) for m in result)))
        else:
            described[name] = result
    return described


async def _refused(name: str, exc: CortanError, url: str = "") -> HostReport:
    return HostReport(name, url, None, exc, 0.0)


async def _probe(
    manager: ModelManager,
    pool: HostPool,
    host: Host,
    provider: Provider,
    limit: float,
    versions: bool,
) -> HostReport:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            models = await manager.list_host_models(pool, host)
    except CortanError as exc:
        return HostReport(pool.name, host.url, None, exc, time.perf_counter() - start)
    except TimeoutError:
        error = ProviderTimeoutError(f"{host.url} did not answer within {limit:g} s")
        return HostReport(pool.name, host.url, None, error, time.perf_counter() - start)
    latency = time.perf_counter() - start
    version = None
    if versions and (get_version := getattr(provider, "get_version", None)) is not None:
        version = await get_version()
    return HostReport(pool.name, host.url, models, None, latency, version)
