"""The tools one process offers: the built-ins the config names, and the MCP servers'.

Layer: engine. The composition root builds one toolbox per process from the
settings; MCP servers start on the first request that offers tools (or ``cortan
tools``), and :meth:`Toolbox.aclose` stops them with cortan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from cortan.engine.tools.base import Tool, make_spec
from cortan.engine.tools.builtin import make_builtins

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.engine.tools.mcp import McpPool


class Toolbox:
    """Finds tools by name and lists their specs for the model."""

    def __init__(self, builtins: list[Tool], mcp: McpPool | None = None) -> None:
        self.builtins = builtins
        self.mcp = mcp  # None: no [mcp.servers] configured
        self._found: dict[str, Tool] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Toolbox:
        tools = settings.tools
        builtins = make_builtins(
            tools.builtin,
            max_bytes=tools.max_result_bytes,
            command_timeout=tools.command_timeout,
            search_max_files=tools.search_max_files,
        )
        pool = None
        if settings.mcp.servers:
            from cortan.engine.tools.mcp import McpPool

            pool = McpPool(settings.mcp.servers)
        return cls(builtins, pool)

    async def list_tools(
        self,
        on_error: Callable[[str], Awaitable[None]] | None = None,
        on_note: Callable[[str], Awaitable[None]] | None = None,
        *,
        again: bool = True,
        client: str | None = None,
    ) -> list[Tool]:
        """Every tool: the built-ins, then each MCP server's (started now if need be).

        A server that cannot start is left out and told to ``on_error`` (with
        ``again=False`` only the first time, or each time for a gateway ``client``);
        with no ``on_error`` its ToolError is raised. What a server's listing left out
        is told to ``on_note``, once (cortan.engine.told).
        """
        served: list[Any] = []
        if self.mcp is not None:  # each server starts once; then this is a look-up
            served = await self.mcp.list_tools(on_error, on_note, again=again, client=client)
        self._found = {tool.name: tool for tool in [*self.builtins, *served]}
        return list(self._found.values())

    async def specs(
        self,
        on_error: Callable[[str], Awaitable[None]],
        on_note: Callable[[str], Awaitable[None]] | None = None,
        client: str | None = None,
    ) -> tuple[dict[str, Any], ...]:
        tools = await self.list_tools(on_error, on_note, again=False, client=client)
        return tuple(make_spec(tool) for tool in tools)

    def find(self, name: str) -> Tool | None:
        """The tool the model called by ``name`` (as listed by the last :meth:`list_tools`)."""
        return (self._found or {}).get(name)

    def names(self) -> list[str]:
        """The names of the tools offered (by the last :meth:`list_tools`), MCP's too."""
        return list(self._found) if self._found is not None else [t.name for t in self.builtins]

    async def aclose(self) -> None:
        if self.mcp is not None:
            await self.mcp.aclose()
