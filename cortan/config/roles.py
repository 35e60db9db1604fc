"""Roles: named system prompts, each optionally with its own model and temperature.

Config layer. A few roles ship built in (``shell``, ``code``, ``explain``,
``review``); ``[roles.NAME]`` in the config file adds more or changes a built-in
one key by key (``[roles.shell] model = "fast"`` keeps the built-in prompt). The
front ends look roles up here: ``cortan ask --role``, ``cortan roles`` and the
REPL's ``/role`` all call :func:`get_role` / :func:`get_roles`.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import platform
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from cortan.core.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from cortan.config.settings import RoleConfig, Settings


class Role(NamedTuple):
    """A role as used: its system prompt, and the model and temperature it asks for."""

    name: str
    system: str
    model: str | None = None
    temperature: float | None = None
    builtin: bool = False

    @property
    def options(self) -> tuple[tuple[str, object], ...]:
        """Request options (``ChatRequest.options``) this role sets."""
        return () if self.temperature is None else (("temperature", self.temperature),)

    @property
    def summary(self) -> str:
        """The system prompt's first line, for listings."""
        return self.system.strip().partition("\n")[0]


@cache
def describe_system() -> str:
    """The OS and shell the user is on, so that the shell role answers for them."""
    if os.name == "nt":
        return "PowerShell on Windows"
    shell = os.path.basename(os.environ.get("SHELL", "")) or "sh"
    name = "macOS" if platform.system() == "Darwin" else platform.system() or "a Unix system"
    with contextlib.suppress(OSError):  # no /etc/os-release (macOS, BSD)
        name = platform.freedesktop_os_release().get("PRETTY_NAME", name)
    return f"{shell} on {name}"


def builtin_role_names() -> list[str]:
    """The roles that ship with cortan, by name (for Tab, which reads no settings)."""
    return sorted(_builtin_systems())


def _builtin_systems() -> dict[str, str]:
    return {
        "shell": (
            "Answer with exactly one shell command for "
            f"{describe_system()} that does what the user asks.\n"
            "Output the command only: no explanation, no Markdown, no code fences, no $ prompt. "
            "Join several steps into one line with && or pipes. If it cannot be done safely "
            "with a command, answer with one line starting with # that says why."
        ),
        "code": (
            "Answer with code only: no prose before or after it, no explanation, "
            "no Markdown code fences.\n"
            "Comments inside the code are fine where a reader needs them. When the language "
            "is not stated, use the one the request implies."
        ),
        "explain": (
            "Explain the given code, command or text clearly and briefly.\n"
            "Say what it does first, then how, then anything surprising or risky. Assume the "
            "reader knows the basics; use short paragraphs or lists."
        ),
        "review": (
            "Review the given code or diff as a careful senior engineer.\n"
            "List bugs, security problems, unclear names and missing tests, most important "
            "first, each with where it is and a concrete fix. Say so plainly when nothing "
            "needs changing."
        ),
    }


def get_roles(settings: Settings) -> dict[str, Role]:
    """Every role, built-in and configured, by name in alphabetical order."""
    roles = {name: Role(name, system, builtin=True) for name, system in _builtin_systems().items()}
    for name, config in settings.roles.items():
        roles[name] = _merge(name, config, roles.get(name))
    return dict(sorted(roles.items()))


def _merge(name: str, config: RoleConfig, builtin: Role | None) -> Role:
    """A configured role; keys it leaves out keep the built-in role's values."""
    base = builtin or Role(name, "")
    if config.system is None and builtin is None:
        raise ConfigError(
            f'role {name!r} has no system prompt: add system = "…" under [roles.{name}]'
        )
    return Role(
        name,
        base.system if config.system is None else config.system,
        base.model if config.model is None else config.model,
        base.temperature if config.temperature is None else config.temperature,
        builtin=builtin is not None,
    )


def get_role(settings: Settings, name: str) -> Role:
    """The role called ``name``; a UsageError naming the nearest one on a typo."""
    roles = get_roles(settings)
    if name in roles:
        return roles[name]
    close = difflib.get_close_matches(name, list(roles), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(roles)
    raise UsageError(f"no role named {name!r}: {hint}the roles are {known} (see `cortan roles`)")
