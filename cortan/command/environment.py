"""What the model is told about where the command will run, and nothing more.

Layer: command (stdlib only). A command is only right for one shell on one system:
``find -printf`` is GNU, ``stat -f`` is BSD, fish has no ``$(...)``. The model is
told the shell (from ``$SHELL``), the operating system, the flavour of its core tools
(GNU, BSD/macOS, busybox) and the current directory; no file names, no environment,
no history (issue 17: nothing else is sent without asking).
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import NamedTuple

#: The shells cortan writes commands for by name; any other is treated as POSIX sh.
KNOWN_SHELLS = ("bash", "zsh", "fish", "sh", "dash", "ksh")
FALLBACK_SHELL = "/bin/sh"


class Environment(NamedTuple):
    """The shell the command runs in and the system it runs on."""

    shell: str  # bash, zsh, fish, sh...
    shell_path: str  # what runs it: $SHELL when it can, else /bin/sh
    system: str  # "Linux (Debian GNU/Linux 12)", "macOS 14.5"
    tools: str  # "GNU", "BSD (macOS)", "busybox"
    cwd: str


def detect(shell_name: str | None = None) -> Environment:
    """This process's shell (``shell_name``, else ``$SHELL``), system, core tools and folder.

    ``shell_name`` is for a shell that is not the login one (``cortan shell-init``'s
    bindings say which shell they run in): it is looked up on PATH.
    """
    value = os.environ.get("SHELL", "")
    if shell_name is not None:
        value = shutil.which(shell_name) or ""
    shell_path, shell = find_shell(value)
    system = platform.system()
    return Environment(shell, shell_path, describe_system(system), tool_flavour(system), _cwd())


def find_shell(value: str) -> tuple[str, str]:
    """``$SHELL`` as (path to run, name); /bin/sh when it is unset or not executable."""
    path = value.strip()
    if path and os.path.isabs(path) and os.access(path, os.X_OK) and os.path.isfile(path):
        name = Path(path).name
        return path, name if name in KNOWN_SHELLS else "sh"
    return FALLBACK_SHELL, "sh"


def describe_system(system: str) -> str:
    if system == "Darwin":
        version = platform.mac_ver()[0]
        return f"macOS {version}".strip()
    if system == "Linux":
        name = _os_release().get("PRETTY_NAME")
        return f"Linux ({name})" if name else "Linux"
    return system or "a Unix system"


def tool_flavour(system: str) -> str:
    """Whose ``ls``, ``sed`` and ``find``: their options differ."""
    if system == "Darwin":
        return "BSD (macOS)"
    if system.endswith("BSD") or system == "DragonFly":
        return "BSD"
    ls = shutil.which("ls")
    if ls is not None and Path(os.path.realpath(ls)).name.startswith("busybox"):
        return "busybox"
    return "GNU"


def _os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")[:8192]
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip().strip('"')[:80]
    return found


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the folder was removed under us
        return os.environ.get("PWD", "an unknown folder")


def system_prompt(env: Environment) -> str:
    """The instructions for the model: one command, for this shell and system."""
    return (
        f"You turn a request into one command line for {env.shell} on {env.system}, "
        f"whose core tools are the {env.tools} ones. It runs in {env.cwd}. "
        'Answer with a JSON object: "command" is the command line, ready to run as it '
        f"is in {env.shell} (no prose, no code fences, no prompt sign), and "
        '"explanation" says in one short line what it does. Prefer the simplest '
        "command that does what was asked; do not add sudo, deletions or overwrites the "
        "request did not ask for. If no command can do it, give an empty command and "
        "say why in the explanation."
    )
