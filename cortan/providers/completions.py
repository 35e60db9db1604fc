"""The chat completions format without the SDK: a request's body, a stream's chunks.

Layer: providers (beside ``openai.py``, which sends what this module shapes and hands
it what the SDK parsed). No SDK here: cortan's messages and options go out as the
wire's dicts, and each streamed chunk comes back as cortan's pieces (text,
``Thinking``, whole ``ToolCall``s, ``Usage``), read from choice 0 only. What a
server may send is not trusted: the SDK checks few types, so any JSON can arrive.
"""

from __future__ import annotations

from typing import Any

from cortan.core.errors import BadResponseError
from cortan.core.messages import Message, Usage
from cortan.providers.base import ModelRequest, Thinking, ToolCall, sane_usage
from cortan.providers.fields import BODY_OPTIONS, EXTRA_OPTIONS

#: The most tool calls one turn may ask for; more is a server gone wrong.
MAX_CALLS = 64


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


def first_choice(chunk: Any) -> list[Any]:
    """The chunk's part of choice 0: another index is another candidate answer (``n`` > 1)."""
    choices = chunk.choices
    if not isinstance(choices, list):  # the SDK does not check: "choices": "x" iterates
        raise ValueError("choices is not a list")
    return [choice for choice in choices if getattr(choice, "index", None) == 0]


def delta_items(delta: Any, calls: CallParts) -> list[str | Thinking]:
    """What one delta brings: reasoning, text; its tool-call pieces go to ``calls``."""
    items: list[str | Thinking] = []
    if reasoning := _reasoning(delta):
        items.append(Thinking(reasoning))
    if delta.content:
        items.append(delta.content)
    if delta.tool_calls:
        calls.add(delta.tool_calls)
    return items


class CallParts:
    """Streamed ``tool_calls`` deltas joined into whole calls, by their ``index``.

    The first delta of a call carries its id and name, the later ones pieces of its
    arguments' JSON text; several calls of one turn interleave by index. Bounded: a
    server cannot make cortan hold more than ``MAX_CALLS`` calls of one turn.
    """

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, *argument pieces]

    def add(self, deltas: Any) -> None:
        for delta in deltas:
            index = delta.index if isinstance(delta.index, int) else len(self._calls)
            parts = self._calls.get(index)
            if parts is None:
                if len(self._calls) >= MAX_CALLS:
                    raise BadResponseError(
                        f"the server asked for more than {MAX_CALLS} tool calls in one turn"
                    )
                parts = self._calls[index] = ["", ""]
            if delta.id:
                parts[0] = delta.id
            function = delta.function
            if function is not None:
                if function.name:
                    parts[1] += function.name
                if function.arguments:
                    parts.append(function.arguments)

    def complete(self) -> list[ToolCall]:
        return [
            ToolCall(parts[0] or f"call_{index}", parts[1], "".join(parts[2:]))
            for index, parts in sorted(self._calls.items())
        ]


def _reasoning(delta: Any) -> str | None:
    """Reasoning in a delta: ``reasoning_content`` (llama.cpp, vLLM, DeepSeek) or ``reasoning``.

    Neither is in the SDK's model, so they arrive as extra fields.
    """
    extra = getattr(delta, "model_extra", None) or {}
    text = extra.get("reasoning_content") or extra.get("reasoning")
    return text if isinstance(text, str) and text else None


def chunk_usage(usage: Any) -> Usage:
    details = getattr(usage, "completion_tokens_details", None)
    thinking = getattr(details, "reasoning_tokens", None) if details is not None else None
    prompt = getattr(usage, "prompt_tokens", None)  # the SDK does not check: any JSON comes
    return sane_usage(prompt, getattr(usage, "completion_tokens", None), thinking)
