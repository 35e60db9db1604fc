"""The chat completions format without the SDK: a request's body, a stream's chunks.

Layer: providers (beside ``openai.py``, which sends what this module shapes and hands
it what the SDK parsed). No SDK here: cortan's messages and options go out as the
wire's dicts, and each streamed chunk comes back as cortan's pieces (text,
``Thinking``, whole ``ToolCall``s, ``Usage``), read from choice 0 only. What a
server may send is not trusted: the SDK checks few types, so any JSON can arrive.
"""

from __future__ import annotations

from typing import Any

from cortan.core.messages import Message, Usage
from cortan.providers.base import (
    ModelRequest,
    Thinking,
    ToolCall,
    count_calls,
    json_object,
    json_text,
    sane_usage,
)
from cortan.providers.fields import BODY_OPTIONS, EXTRA_OPTIONS


def wire_message(message: Message) -> dict[str, Any]:
    """One message in the wire's form: images as data-URL content parts before the text;
    an assistant's tool calls; a tool's result naming the call it answers."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image.data_url()}} for image in message.images
    ]
    parts.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": parts}


def body_options(request: ModelRequest) -> dict[str, Any]:
    """cortan's options in the body's own names; the extras servers take in extra_body.

    An option this API has no name for (``num_ctx``) is left out, and
    :meth:`cortan.providers.fields.Fields.shape` says so.
    """
    body = {k: v for k, v in request.options.items() if k in BODY_OPTIONS}
    extra = {k: v for k, v in request.options.items() if k in EXTRA_OPTIONS}
    if isinstance(request.think, str):
        body["reasoning_effort"] = request.think  # OpenAI, Ollama's /v1, vLLM
    elif request.think is not None:
        # llama.cpp's server and vLLM switch a model's thinking in its chat template.
        extra["chat_template_kwargs"] = {"enable_thinking": request.think}
    if request.tools:
        body["tools"] = [dict(tool) for tool in request.tools]
    if request.schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": dict(request.schema)},
        }
    if extra:
        body["extra_body"] = extra
    return body


def first_choice(chunk: object) -> list[dict[str, Any]]:
    """The chunk's part of choice 0: another index is another candidate answer (``n`` > 1).

    Chunks arrive as the JSON the server sent (the SDK builds no model of them: that
    was a seventh of the gateway's CPU per request), so every shape is checked here.
    """
    choices = json_object(chunk, "a chunk").get("choices")
    if not isinstance(choices, list):
        raise ValueError("choices is not a list")
    return [choice for choice in choices if isinstance(choice, dict) and choice.get("index") == 0]


def read_chunk(chunk: object, calls: CallParts) -> tuple[list[str | Thinking], object, object]:
    """What one chunk brings from choice 0: its pieces (tool-call pieces go to
    ``calls``), its ``finish_reason`` and its ``usage``, either None when absent."""
    items: list[str | Thinking] = []
    reason: object = None
    for choice in first_choice(chunk):
        items += delta_items(json_object(choice.get("delta"), "a delta"), calls)
        reason = choice.get("finish_reason") or reason
    return items, reason, json_object(chunk, "a chunk").get("usage")


def delta_items(delta: dict[str, Any], calls: CallParts) -> list[str | Thinking]:
    """What one delta brings: reasoning, text; its tool-call pieces go to ``calls``."""
    items: list[str | Thinking] = []
    if reasoning := _reasoning(delta):
        items.append(Thinking(reasoning))
    if content := json_text(delta.get("content"), "content"):
        items.append(content)
    if tool_calls := delta.get("tool_calls"):
        if not isinstance(tool_calls, list):
            raise ValueError("tool_calls is not a list")
        calls.add(tool_calls)
    return items


class CallParts:
    """Streamed ``tool_calls`` deltas joined into whole calls, by their ``index``.

    The first delta of a call carries its id and name, the later ones pieces of its
    arguments' JSON text; several calls of one turn interleave by index. Bounded: a
    server cannot make cortan hold more than ``MAX_TOOL_CALLS`` calls of one turn.
    """

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, *argument pieces]

    def add(self, deltas: list[Any]) -> None:
        for given in deltas:
            delta = json_object(given, "a tool call")
            index = delta.get("index")
            index = index if isinstance(index, int) else len(self._calls)
            parts = self._calls.get(index)
            if parts is None:
                count_calls(len(self._calls) + 1)
                parts = self._calls[index] = ["", ""]
            if call_id := json_text(delta.get("id"), "a call's id"):
                parts[0] = call_id
            function = delta.get("function")
            if function is not None:
                function = json_object(function, "a call's function")
                parts[1] += json_text(function.get("name"), "a call's name")
                if arguments := json_text(function.get("arguments"), "a call's arguments"):
                    parts.append(arguments)

    def complete(self) -> list[ToolCall]:
        return [
            ToolCall(parts[0] or f"call_{index}", parts[1], "".join(parts[2:]))
            for index, parts in sorted(self._calls.items())
        ]


def _reasoning(delta: dict[str, Any]) -> str | None:
    """Reasoning in a delta: ``reasoning_content`` (llama.cpp, vLLM, DeepSeek) or ``reasoning``."""
    text = delta.get("reasoning_content") or delta.get("reasoning")
    return text if isinstance(text, str) and text else None


def chunk_usage(usage: object) -> Usage:
    """The counts of a chunk's ``usage``: what is not a count is no count (sane_usage)."""
    fields = usage if isinstance(usage, dict) else {}
    details = fields.get("completion_tokens_details")
    thinking = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return sane_usage(fields.get("prompt_tokens"), fields.get("completion_tokens"), thinking)
