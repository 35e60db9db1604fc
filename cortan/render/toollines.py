"""One dim line for each tool call and its outcome, for stderr and the REPL.

Layer: render (core only). The model's tool name and arguments, and a tool's output,
are outside text: each line shows them made visible (controls, escapes, invisible
characters written as ``<U+...>``) and cut short, so a call cannot drive the
terminal or hide what it does. The whole output is the model's and the store's, not
the screen's.
"""

from __future__ import annotations

from cortan.core.events import ToolCalled, ToolResult
from cortan.core.text import format_size, make_visible, shorten

ARGUMENTS_SHOWN = 160  # characters of a call's arguments on its line
OUTPUT_SHOWN = 100  # characters of a result's first line


def _cut(text: str, limit: int) -> str:
    return shorten(make_visible(text), limit)


def describe_call(event: ToolCalled) -> str:
    call = event.call
    return f"tool: {_cut(call.name, 80)} {_cut(call.arguments, ARGUMENTS_SHOWN)}"


def describe_result(event: ToolResult) -> str | None:
    """The outcome's line; None for a refused call, whose line the gate's notice was
    (``NAME was not run: why``): its result holds only that, worded for the model."""
    if event.status == "refused":
        return None
    name = _cut(event.call.name, 80)
    output = event.output.strip()
    first = output.splitlines()[0] if output else ""
    size = format_size(len(output.encode("utf-8", errors="replace")))
    if event.status == "ok":
        return f"tool: {name} gave {size}: {_cut(first, OUTPUT_SHOWN)}"
    return f"tool: {name} {event.status}: {_cut(first, OUTPUT_SHOWN)}"
