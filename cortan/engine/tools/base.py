"""What a tool is to the loop: a name, a JSON schema, and a call that returns text.

Layer: engine. Built-in tools (:mod:`.builtin`) and MCP servers' tools (:mod:`.mcp`)
both look like this, so the loop, the gate and the views treat them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Tool(Protocol):
    """One tool the model may call."""

    @property
    def name(self) -> str:
        """The name the model calls it by (letters, digits, ``_`` and ``-``)."""
        ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, Any]:
        """A JSON Schema for the arguments object."""
        ...

    def command_of(self, arguments: Mapping[str, Any]) -> str | None:
        """The shell command this call would run (the gate judges its risks), or None."""
        ...

    async def call(self, arguments: Mapping[str, Any]) -> str:
        """Run the call; its output as text. Raises ToolError when it cannot."""
        ...


def make_spec(tool: Tool) -> dict[str, Any]:
    """``tool`` as both wires take it (Ollama's ``tools``, OpenAI's ``tools``)."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters),
        },
    }
