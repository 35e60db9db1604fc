"""The checks ``cortan doctor`` runs, each one row of its table.

Layer: cli (it looks at everything: config, the model manager's hosts and
breakers, keys, the session store, the terminal). Every check returns a
:class:`Check` and never raises: a failure is a row that says what is wrong.
Hosts are surveyed through the same services a prompt uses
(:mod:`cortan.engine.catalog`, which ``/models`` and ``cortan models`` share), so
the circuit breaker states shown are the ones this process arrived at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cortan.core.errors import CortanError, pull_command
from cortan.core.text import count_of

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.core.messages import ModelInfo
    from cortan.engine.catalog import HostReport
    from cortan.engine.hosts import HostState
    from cortan.engine.routes import Route

Status = Literal["ok", "warn", "fail", "info"]


@dataclass
class Check:
    """One row: what was checked, how it went, and the figures behind it (for --json)."""

    area: str
    name: str
    status: Status
    detail: str
    data: dict[str, object] = field(default_factory=dict)


def check_config(path: Path) -> tuple[Settings | None, Check]:
    from cortan.config.load import load_settings

    try:
        settings = load_settings(path)
    except CortanError as exc:
        return None, Check("config", str(path), "fail", str(exc), {"path": str(path)})
    state = "valid" if path.exists() else "no file: defaults apply"
    return settings, Check("config", str(path), "ok", state, {"path": str(path)})


def host_rows(host_states: list[HostState], probes: list[HostReport]) -> list[Check]:
    """One row per host, with its breaker state as this process left it.

    A host that is down is a warning: whether it matters is the default model's row.
    """
    states = {(s.provider, s.url): s for s in host_states}
    rows = []
    for probe in probes:
        state = states[(probe.provider, probe.url)]
        circuit = f"circuit {state.state}" + (
            f", {state.failures} failed" if state.failures else ""
        )
        data: dict[str, object] = {
            "provider": probe.provider,
            "url": probe.url,
            "reachable": probe.error is None,
            "version": probe.version,
            "latency_ms": round(probe.latency * 1000, 1),
            "breaker": str(state.state),
            "failures": state.failures,
            "models": None if probe.models is None else len(probe.models),
        }
        name = f"{probe.provider} {probe.url}"
        if probe.models is None:
            rows.append(Check("provider", name, "warn", f"{probe.error} ({circuit})", data))
            continue
        version = f"version {probe.version}, " if probe.version else ""
        models = count_of(len(probe.models), "model")
        detail = f"{version}{models}, {probe.latency * 1000:.0f} ms, {circuit}"
        rows.append(Check("provider", name, "ok", detail, data))
    return rows


def key_rows(settings: Settings) -> list[Check]:
    """Providers that need a key: whether they have one and from where (never the key)."""
    from cortan.config.keys import locate_api_key, suggest_variable

    rows = []
    for name, config in settings.providers.items():
        if config.kind != "openai" or config.is_local():
            continue
        found = locate_api_key(name, config)
        data: dict[str, object] = {"provider": name, "source": found.source}
        if found.source is not None:
            where = "api_key_cmd" if found.source == "command" else f"{found.source} {found.detail}"
            rows.append(Check("key", name, "ok", f"from {where}", data))
            continue
        hint = f"set {suggest_variable(name, config)} or run `cortan keys set {name}`"
        rows.append(Check("key", name, "warn", f"no API key: {hint}", data))
    return rows


def check_default(settings: Settings, chain: list[Route], probes: list[HostReport]) -> Check:
    """Whether the default model can answer, or else a fallback of its chain can.

    A default model that cannot answer while a fallback can is a warning, not a
    failure: prompts are answered, by the fallback (issue 21).
    """
    route = chain[0]
    data: dict[str, object] = {"model": str(route)}
    why = why_unusable(settings, route, probes)
    if why is None:
        return Check("model", "default model", "ok", f"{route} is available", data)
    sentence = f"the default model {route} cannot be used: {why}"
    standing_in = next((r for r in chain[1:] if why_unusable(settings, r, probes) is None), None)
    if standing_in is not None:
        data["answered_by"] = str(standing_in)
        detail = f"{sentence}; its fallback {standing_in} answers instead"
        return Check("model", "default model", "warn", detail, data)
    return Check("model", "default model", "fail", sentence, data)


def why_unusable(settings: Settings, route: Route, probes: list[HostReport]) -> str | None:
    """Why ``route`` cannot answer, as the probes of its hosts saw it (None: it can)."""
    mine = [p for p in probes if p.provider == route.provider]
    answering = [p for p in mine if p.models is not None]
    if not answering:
        return str(mine[0].error) if mine else f"provider {route.provider!r} is not configured"
    if not any(has_model(p.models or [], route.model) for p in answering):
        return f"{route.provider} has no model {route.model!r} ({_missing_hint(settings, route)})"
    return None


def has_model(models: list[ModelInfo], name: str) -> bool:
    """Whether ``name`` is among ``models`` (Ollama's bare names mean ``:latest``)."""
    names = {m.name for m in models}
    return name in names or (":" not in name and f"{name}:latest" in names)


def _missing_hint(settings: Settings, route: Route) -> str:
    if settings.providers[route.provider].kind == "ollama":
        return f"run `{pull_command(route.provider, route.model)}`"
    return f"`cortan models -p {route.provider}` lists the ones it has"


def check_store(data_dir: Path) -> Check:
    from cortan.store import describe_store

    try:
        info = describe_store(data_dir)
    except CortanError as exc:
        return Check("store", str(data_dir), "fail", str(exc), {"path": str(data_dir)})
    data: dict[str, object] = {
        "path": str(info.path),
        "exists": info.exists,
        "schema_version": info.schema_version,
        "size_bytes": info.size_bytes,
    }
    if not info.exists:
        return Check("store", str(info.path), "ok", "not created yet", data)
    size = f"{info.size_bytes / 1024:.0f} KiB"
    detail = f"schema v{info.schema_version}, {size}, {info.conversations} conversations"
    return Check("store", str(info.path), "ok", detail, data)


def check_terminal(color_enabled: bool) -> Check:
    from rich.console import Console

    console = Console(no_color=not color_enabled)
    colour = console.color_system if console.is_terminal and color_enabled else None
    data: dict[str, object] = {
        "terminal": console.is_terminal,
        "color": colour,
        "width": console.width,
        "encoding": console.encoding,
    }
    where = "a terminal" if console.is_terminal else "not a terminal (plain output)"
    detail = f"{where}, colour {colour or 'off'}, width {console.width}, {console.encoding}"
    status: Status = "ok" if console.encoding.lower().startswith("utf") else "warn"
    return Check("terminal", "stdout", status, detail, data)
