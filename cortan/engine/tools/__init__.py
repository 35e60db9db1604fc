"""The model's tools: the built-ins, MCP servers' tools, and the loop that calls them.

Layer: engine. A request with ``tools`` on is sent with the toolbox's specs; when the
model's answer ends in tool calls, :class:`cortan.engine.tools.loop.ToolLoop` puts
each call through the approval gate, runs it, sends the results back marked as data,
and asks the model again, bounded in rounds and time (docs/tools.md).
"""
