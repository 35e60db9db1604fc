"""The built-in tools: read a file, list a folder, search text in a tree, run a command.

Layer: engine (stdlib only). Off unless the user turns tools on (``--tools``,
``/tools``, ``[tools] enabled``), and every call still passes the approval gate:
these functions only do the work once a call is allowed. Each is bounded (bytes
read, entries listed, files searched, seconds run), because a model may ask for
``/`` or ``yes``; the loop bounds what goes back to the model again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cortan.core.errors import ToolError
from cortan.core.files import expand_user
from cortan.core.text import format_size

#: Names of the built-in tools, in the order they are offered.
BUILTIN_NAMES = ("read_file", "list_dir", "search_text", "run_command")
MAX_ENTRIES = 500  # list_dir
MAX_MATCHES = 200  # search_text
MAX_LINE = 240  # characters of one matching line shown
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"})


def _path(arguments: Mapping[str, Any], key: str = "path", default: str | None = None) -> Path:
    value = arguments.get(key, default)
    if not isinstance(value, str) or not value or "\0" in value:
        raise ToolError(f"{key} must be a non-empty path")
    return expand_user(Path(value))


def _describe(exc: OSError, path: Path) -> str:
    return f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}"


@dataclass(frozen=True)
class ReadFile:
    """The text of one file, its first ``max_bytes``."""

    max_bytes: int
    name: str = "read_file"
    description: str = "Read a text file and return its content (the beginning of a long one)."

    @property
    def parameters(self) -> Mapping[str, Any]:
        return {
            "type": "object",
            "properties": {"path": {"type": "string", "description": "The file to read."}},
            "required": ["path"],
        }

    def command_of(self, arguments: Mapping[str, Any]) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any]) -> str:
        path = _path(arguments)
        return await asyncio.to_thread(self._read, path)

    def _read(self, path: Path) -> str:
        try:
            with path.open("rb") as file:
                data = file.read(self.max_bytes + 1)
        except IsADirectoryError:
            raise ToolError(f"{str(path)!r} is a folder; list_dir lists it") from None
        except OSError as exc:
            raise ToolError(_describe(exc, path)) from None
        if b"\0" in data[:8192]:
            raise ToolError(f"{str(path)!r} is a binary file, not text")
        text = data[: self.max_bytes].decode("utf-8", errors="replace")
        if len(data) > self.max_bytes:
            text += f"\n[... cut: only the first {format_size(self.max_bytes)} are shown]"
        return text


@dataclass(frozen=True)
class ListDir:
    """The entries of one folder, folders marked with ``/``."""

    name: str = "list_dir"
    description: str = "List the files and folders in a folder (folders end in /)."

    @property
    def parameters(self) -> Mapping[str, Any]:
        return {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The folder; . when left out."}
            },
        }

    def command_of(self, arguments: Mapping[str, Any]) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any]) -> str:
        path = _path(arguments, default=".")
        return await asyncio.to_thread(self._list, path)

    def _list(self, path: Path) -> str:
        try:
            with os.scandir(path) as entries:
                names = []
                for entry in entries:
                    names.append(entry.name + ("/" if entry.is_dir() else ""))
                    if len(names) > 10 * MAX_ENTRIES:
                        break
        except NotADirectoryError:
            raise ToolError(f"{str(path)!r} is a file; read_file reads it") from None
        except OSError as exc:
            raise ToolError(_describe(exc, path)) from None
        names.sort()
        shown = names[:MAX_ENTRIES]
        if len(names) > MAX_ENTRIES:
            shown.append(f"[... and more: only the first {MAX_ENTRIES} entries are shown]")
        return "\n".join(shown) if shown else "(empty folder)"


@dataclass(frozen=True)
class SearchText:
    """Lines holding a piece of text, in the files of a tree: bounded in files and lines."""

    max_files: int
    max_bytes: int
    name: str = "search_text"
    description: str = (
        "Search the text files under a folder for lines containing a piece of text "
        "(case-insensitive); returns path:line: text for each match."
    )

    @property
    def parameters(self) -> Mapping[str, Any]:
        return {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The text to look for."},
                "path": {"type": "string", "description": "The folder to search; . by default."},
            },
            "required": ["text"],
        }

    def command_of(self, arguments: Mapping[str, Any]) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any]) -> str:
        text = arguments.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ToolError("text must be a non-empty string")
        path = _path(arguments, default=".")
        return await asyncio.to_thread(self._search, text.lower(), path)

    def _search(self, text: str, root: Path) -> str:
        if not root.exists():
            raise ToolError(f"{str(root)!r} does not exist")
        found: list[str] = []
        for files, path in enumerate(self._walk(root), start=1):
            if files > self.max_files:
                found.append(f"[... stopped after {self.max_files} files (tools.search_max_files)]")
                break
            for number, line in self._lines(path):
                if text in line.lower():
                    shown = line.strip()[:MAX_LINE]
                    found.append(f"{path}:{number}: {shown}")
                    if len(found) >= MAX_MATCHES:
                        found.append(f"[... stopped at {MAX_MATCHES} matches]")
                        return "\n".join(found)
        return "\n".join(found) if found else "no matches"

    def _walk(self, root: Path) -> Any:
        if root.is_file():
            yield root
            return
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
            for name in sorted(names):
                yield Path(folder) / name

    def _lines(self, path: Path) -> list[tuple[int, str]]:
        try:
            with path.open("rb") as file:
                data = file.read(self.max_bytes)
        except OSError:
            return []
        if b"\0" in data[:8192]:
            return []  # binary
        text = data.decode("utf-8", errors="replace")
        return list(enumerate(text.splitlines(), start=1))


@dataclass(frozen=True)
class RunCommand:
    """One shell command, through the gate with its command judged: output captured."""

    timeout: float
    max_bytes: int
    name: str = "run_command"
    description: str = (
        "Run a shell command in the current folder and return its exit status and output "
        "(stdout and stderr together). The user approves each command."
    )

    @property
    def parameters(self) -> Mapping[str, Any]:
        return {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The command line."}},
            "required": ["command"],
        }

    def command_of(self, arguments: Mapping[str, Any]) -> str | None:
        command = arguments.get("command")
        return command if isinstance(command, str) else None

    async def call(self, arguments: Mapping[str, Any]) -> str:
        command = self.command_of(arguments)
        if not command or not command.strip() or "\0" in command:
            raise ToolError("command must be a non-empty command line")
        try:
            process = await asyncio.create_subprocess_shell(
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped whole on timeout or Ctrl-C
            )
        except OSError as exc:
            raise ToolError(f"cannot start the command: {exc.strerror or exc}") from None
        try:
            async with asyncio.timeout(self.timeout):
                output, cut = await self._read(process)
                status = await process.wait()
        except TimeoutError:
            await _stop(process)
            raise ToolError(
                f"the command ran longer than {self.timeout:g} s (tools.command_timeout) "
                "and was stopped"
            ) from None
        except BaseException:
            await _stop(process)  # Ctrl-C: the command stops with the answer
            raise
        text = output.decode("utf-8", errors="replace")
        if cut:
            text += f"\n[... cut: only the first {format_size(self.max_bytes)} are shown]"
        return f"exit status {status}\n{text}"

    async def _read(self, process: asyncio.subprocess.Process) -> tuple[bytes, bool]:
        """The first ``max_bytes`` of the output; the rest is read and dropped."""
        assert process.stdout is not None
        kept = bytearray()
        cut = False
        while chunk := await process.stdout.read(65536):
            room = self.max_bytes - len(kept)
            if len(chunk) > room:
                cut = True
            kept += chunk[: max(room, 0)]
        return bytes(kept), cut


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Kill the command's whole process group, and reap it (bounded)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(Exception, asyncio.CancelledError):
        async with asyncio.timeout(5):
            await process.wait()


def make_builtins(
    names: list[str],
    *,
    max_bytes: int,
    command_timeout: float,
    search_max_files: int,
) -> list[Any]:
    """The built-in tools named in ``names`` (``[tools] builtin``), in the usual order."""
    made = {
        "read_file": ReadFile(max_bytes),
        "list_dir": ListDir(),
        "search_text": SearchText(search_max_files, max_bytes),
        "run_command": RunCommand(command_timeout, max_bytes),
    }
    return [made[name] for name in BUILTIN_NAMES if name in names]
