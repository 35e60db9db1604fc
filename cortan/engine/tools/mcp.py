"""MCP servers' tools, through the official ``mcp`` SDK (imported only when used).

Layer: engine. Each ``[mcp.servers.NAME]`` is started the first time its tools are
needed (a request with tools on, ``cortan tools``, ``/tools``) and stopped with
cortan. A stdio server is a child process; a streamable-HTTP one is a URL.

Each connection lives in a task of its own that enters the SDK's client and waits
to be told to stop: the SDK's task groups must be left by the task that entered
them, and requests, the REPL's turns and shutdown run in other tasks. Starting is
bounded (``start_timeout``: the process, the handshake and the tool listing), and so
is every call (``call_timeout``): a server that fails, exits or hangs is one sentence
(:class:`cortan.core.errors.ToolError`), never a hang.

A tool ``read`` of server ``files`` is offered to the model as ``mcp__files__read``:
the name both wires accept, and the name the approval gate's rules match.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cortan.core.errors import ToolError
from cortan.core.text import format_size, make_visible, shorten
from cortan.engine.told import Told

if TYPE_CHECKING:
    from cortan.config.settings import McpServer

log = logging.getLogger(__name__)
PREFIX = "mcp__"
STOP_TIMEOUT = 5.0  # seconds a server has to stop before its task is cancelled
MAX_TOOLS = 256  # a server listing more is cut here
MAX_DESCRIPTION = 2000  # characters of a tool's description sent to the model
MAX_SCHEMA_BYTES = 16 << 10  # a tool's schema, as JSON; a larger one is not offered
# The names both wires accept (OpenAI's pattern and its 64 characters), whole.
_WIRE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ERROR_TAIL = 300  # characters of a failing server's stderr told in the sentence


def wire_name(server: str, tool: str) -> str:
    return f"{PREFIX}{server}__{tool}"


@dataclass(frozen=True)
class McpTool:
    """One tool of one MCP server, as the loop sees every tool."""

    server: McpConnection
    tool: str
    description: str
    parameters: Mapping[str, Any]

    @property
    def name(self) -> str:
        return wire_name(self.server.name, self.tool)

    def command_of(self, arguments: Mapping[str, Any]) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any]) -> str:
        return await self.server.call(self.tool, arguments)


@dataclass
class McpConnection:
    """One configured server: started once, on demand; stopped by :meth:`stop`."""

    name: str
    config: McpServer
    tools: list[McpTool] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _client: Any = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    notes: list[str] = field(default_factory=list)  # what was left out, to be said once
    _error: str | None = None
    _fault: str | None = None  # why the transport ended the connection, when it knows
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def where(self) -> str:
        config = self.config
        target = config.url or " ".join([config.command or "", *config.args])
        return f"MCP server {self.name!r} ({make_visible(target)[:120]})"

    async def start(self) -> list[McpTool]:
        """Start the server and list its tools, once; ToolError when it cannot."""
        async with self._lock:
            if self._error is not None:
                raise ToolError(self._error)
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name=f"mcp {self.name}")
                await self._await_ready()
            return self.tools

    async def _await_ready(self) -> None:
        assert self._task is not None
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, self._task},
                timeout=self.config.start_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
        if self._ready.is_set():
            return
        if not done:
            self._error = (
                f"{self.where} did not start within {self.config.start_timeout:g} s "
                "(start_timeout); it is stopped"
            )
            await self.stop()
        self._error = self._error or f"{self.where} could not start"
        raise ToolError(self._error)

    async def _run(self) -> None:
        errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        try:
            await self._serve(errlog)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the SDK raises groups, OSError, its own errors
            self._error = f"{self.where} failed: {_describe(exc, errlog)}"
            log.debug("%s", self._error, exc_info=exc)
        finally:
            self._client = None
            errlog.close()
            if not self._stop.is_set() and self._error is None and self._ready.is_set():
                self._error = f"{self.where} stopped"

    async def _serve(self, errlog: Any) -> None:
        try:
            import mcp  # noqa: F401  (the package first: its modules import one another)
            from mcp.client.client import Client
        except ImportError:
            self._error = (
                f"{self.where} needs the MCP client, which is not installed: "
                "pip install 'cortan[mcp]'"
            )
            return

        config = self.config
        if config.url is not None:
            target: Any = config.url
        else:
            from cortan.engine.tools.stdio import bounded_stdio

            target = bounded_stdio(config, errlog, self._set_fault)
        async with Client(target, read_timeout_seconds=config.call_timeout) as client:
            listed = await client.list_tools()
            self.tools, self.notes = self._offered(listed.tools)
            self._client = client
            self._ready.set()
            await self._stop.wait()

    def _offered(self, listed: list[Any]) -> tuple[list[McpTool], list[str]]:
        """The tools of ``listed`` that can be offered, and a sentence for each kind left out.

        Left out: a name the wires refuse (beyond ASCII letters, digits, ``_`` and ``-``,
        or too long): such a name can look like another (a Cyrillic ``е`` in ``echo``),
        and one such name would make an OpenAI-compatible server refuse every request;
        a name listed twice (which of the two would run?); a schema too large to send
        with every request. A long description is cut.
        """
        notes: list[str] = []
        if len(listed) > MAX_TOOLS:
            notes.append(
                f"{self.where} lists {len(listed)} tools; the first {MAX_TOOLS} are offered"
            )
            listed = listed[:MAX_TOOLS]
        counts: dict[str, int] = {}
        for tool in listed:
            counts[tool.name] = counts.get(tool.name, 0) + 1
        bad_names, twice, too_big = [], [], []
        tools: list[McpTool] = []
        for tool in listed:
            name = tool.name
            if not _WIRE_NAME.fullmatch(wire_name(self.name, name)):
                bad_names.append(name)
                continue
            if counts[name] > 1:
                if name not in twice:
                    twice.append(name)
                continue
            schema = _schema(tool.input_schema)
            size = _json_size(schema)
            if size > MAX_SCHEMA_BYTES:
                too_big.append(name)
                continue
            description = shorten(tool.description or "", MAX_DESCRIPTION)
            tools.append(McpTool(self, name, description, schema))
        for names, why in (
            (
                bad_names,
                "names a tool cannot have (ASCII letters, digits, _ and - only, "
                "64 characters with the mcp__ prefix)",
            ),
            (twice, "names listed more than once"),
            (too_big, f"schemas larger than {format_size(MAX_SCHEMA_BYTES)}"),
        ):
            if names:
                notes.append(
                    f"{self.where} lists tools with {why}: {_some(names)}; they are left out"
                )
        return tools, notes

    async def call(self, tool: str, arguments: Mapping[str, Any]) -> str:
        """Call ``tool``; its text content. ToolError when the server fails or says so."""
        await self.start()
        client = self._client
        if client is None:
            raise ToolError(self._error or f"{self.where} is not running")
        try:
            async with asyncio.timeout(self.config.call_timeout):
                result = await client.call_tool(tool, dict(arguments))
        except TimeoutError:
            raise ToolError(
                f"{self.where} did not answer within {self.config.call_timeout:g} s (call_timeout)"
            ) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            why = self._fault or _describe(exc, None)
            raise ToolError(f"{self.where} failed the call: {why}") from None
        text = _content_text(result)
        if getattr(result, "is_error", False) or getattr(result, "isError", False):
            raise ToolError(f"the tool said: {text}")
        return text

    def _set_fault(self, why: str) -> None:
        self._fault = self._fault or make_visible(why)

    async def stop(self) -> None:
        """Stop the server (its process ends), waiting a little, then insisting."""
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        if self._ready.is_set():  # running: it leaves the SDK's client in its own time
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        if not task.done():  # still starting (a hang), or slow to stop
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class McpPool:
    """The configured servers, each started on first use and all stopped together."""

    def __init__(self, servers: Mapping[str, McpServer]) -> None:
        self.connections = {name: McpConnection(name, config) for name, config in servers.items()}
        self._told = Told()  # failures and notes said once, or to each client (told.py)

    async def list_tools(
        self,
        on_error: Any = None,
        on_note: Any = None,
        *,
        again: bool = True,
        client: str | None = None,
    ) -> list[McpTool]:
        """Every server's tools, the servers started at once; a server that fails is
        left out, its sentence handed to ``on_error`` (or raised when there is none).

        ``again=False`` (tools offered with each request) says a failure once per
        process: a server that crashed at the first request stays down, and saying so
        before every answer of a chat would bury the answers; but to every request of a
        gateway ``client``, which learns it nowhere else (cortan.engine.told).

        What a server's listing left out (bad names, a cut list) and every name two
        servers both offer go to ``on_note``, each once per process (to every
        ``client`` request, as above): a server named
        ``a`` listing ``b__c`` would otherwise be offered as ``mcp__a__b__c``, the name
        of server ``a__b``'s tool ``c``, and the gate would ask about one and run the
        other. Such a name is offered by neither.
        """
        connections = list(self.connections.values())
        results = await asyncio.gather(*(c.start() for c in connections), return_exceptions=True)
        tools: list[McpTool] = []
        notes: list[str] = []
        for connection, result in zip(connections, results, strict=True):
            if isinstance(result, ToolError):
                if on_error is None:
                    raise result
                if again or self._told.should_tell(("down", connection.name), client):
                    await on_error(str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                tools.extend(result)
                notes.extend(connection.notes)
        offered = _unshared(tools, notes)
        for note in notes:
            if on_note is not None and self._told.should_tell(("note", note), client):
                await on_note(note)
        return offered

    async def aclose(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.connections.values()))


def _unshared(tools: list[McpTool], notes: list[str]) -> list[McpTool]:
    """The tools whose name no other server's tool has; each name shared, told to `notes`."""
    servers: dict[str, list[str]] = {}
    for tool in tools:
        servers.setdefault(tool.name, []).append(tool.server.name)
    for name, owners in servers.items():
        if len(owners) > 1:
            listed = " and ".join(repr(owner) for owner in owners)
            notes.append(
                f"MCP servers {listed} both offer a tool named {name!r}; neither is offered"
            )
    return [tool for tool in tools if len(servers[tool.name]) == 1]


def _some(names: list[str]) -> str:
    """A few names, made visible and cut, for a sentence."""
    shown = ", ".join(repr(shorten(make_visible(name), 40)) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _json_size(value: Any) -> int:
    """Bytes of ``value`` as JSON; past any bound when it cannot be written as JSON."""
    import json

    try:
        return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "replace"))
    except (ValueError, TypeError, RecursionError):
        return MAX_SCHEMA_BYTES + 1


def _schema(schema: Any) -> Mapping[str, Any]:
    if isinstance(schema, Mapping) and schema.get("type") == "object":
        return schema
    return {"type": "object", "properties": {}}


def _content_text(result: Any) -> str:
    """The text parts of a result; other parts (images, audio) named, not sent."""
    parts = []
    for part in getattr(result, "content", None) or ():
        text = getattr(part, "text", None)
        if isinstance(text, str):
            parts.append(text)
        else:
            parts.append(f"[{getattr(part, 'type', 'content')} left out]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        import json

        parts.append(json.dumps(structured, ensure_ascii=False, default=str))
    return "\n".join(parts)


def _describe(exc: BaseException, errlog: Any) -> str:
    """One phrase for what went wrong: the innermost error, and the server's last words."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        text = "its command was not found"
    elif isinstance(exc, OSError):
        text = exc.strerror or type(exc).__name__
    elif callable(errors := getattr(exc, "errors", None)):  # pydantic: the SDK's checks
        first = (errors() or [{}])[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        text = f"what it sent does not follow MCP ({where}: {first.get('msg', exc)})"
    else:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if errlog is not None:
        with contextlib.suppress(OSError, ValueError):
            errlog.flush()
            errlog.seek(0)
            tail = errlog.read()[-_ERROR_TAIL:].strip()
            if tail:
                last = tail.splitlines()[-1]
                text += f" (it said: {make_visible(last)[:200]})"
    return make_visible(text)[:400]
