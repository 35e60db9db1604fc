"""Ollama's native API without its SDK: a chat's body, a stream's lines, a model's details.

Layer: providers (beside ``ollama.py``, which sends what this module shapes and hands
it what came back). cortan's messages and options go out as the wire's dicts; each
line of a streamed body (newline-delimited JSON) comes back as a dict, read field by
field into cortan's pieces. What a server may send is not trusted: a field cortan
reads that has the wrong type is a reply cortan "cannot parse", as the SDK's models
made it; a count or a duration that is not a whole number is left out, as if the
server had not said; a field cortan does not read is not looked at.

Why not the SDK: ``import ollama`` builds its pydantic models (~90 ms before the
first byte of ``cortan ask``), and per request it built a model of the body and one
of every streamed line (about a seventh of the gateway's CPU per request).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any

from cortan.core.messages import Message, ModelInfo, PullProgress
from cortan.core.options import to_ollama
from cortan.core.text import without_surrogates
from cortan.providers.base import (
    Finish,
    ModelRequest,
    Thinking,
    ToolCall,
    count_calls,
    json_object,
    json_text,
    sane_reason,
    sane_timings,
    sane_usage,
    sane_window,
    text_or_none,
)
from cortan.providers.lines import WholeLines

#: The timings of a chat's final line, in nanoseconds.
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class Refused(Exception):
    """The server's own error: an HTTP status with its body's ``error``, or an
    ``{"error": …}`` line after the stream began (``status_code`` -1, as the SDK had it).
    ``headers`` are the response's (a 429's ``retry-after``)."""

    def __init__(
        self, error: object, status_code: int = -1, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status_code = status_code
        self.headers = headers or {}


def refused(status_code: int, body: str, headers: Mapping[str, str]) -> Refused:
    """An error reply as :class:`Refused`: its JSON's ``error``, or the body as it came."""
    return Refused(error_of(body), status_code, headers)


def error_of(text: object) -> object:
    """The ``error`` of a JSON object written as text, else ``text``: Ollama (or a proxy)
    sometimes wraps the error once more."""
    if not isinstance(text, str):
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return value.get("error", text) if isinstance(value, dict) else text


def error_text(error: object) -> str:
    """An error as a sentence may quote it: text as it is, an object's ``message``, any
    other JSON as JSON; empty for none (Python's ``None`` and ``{'message': …}`` were
    quoted as they print)."""
    if error is None or isinstance(error, str):
        return error or ""
    if isinstance(error, dict) and isinstance(message := error.get("message"), str):
        return message
    try:
        return json.dumps(error, ensure_ascii=False)
    except (ValueError, RecursionError):  # nested past what can be written back
        return ""


def chat_body(request: ModelRequest) -> dict[str, Any]:
    """The body of ``/api/chat``, streamed, as the SDK spelled it (fields in its order)."""
    body: dict[str, Any] = {"model": request.model, "stream": True}
    if (options := _options(request.options)) is not None:
        body["options"] = options
    if request.schema is not None:
        body["format"] = dict(request.schema)
    if (keep_alive := request.options.get("keep_alive")) is not None:
        body["keep_alive"] = keep_alive
    body["messages"] = [wire_message(m) for m in request.messages]
    body["tools"] = [dict(tool) for tool in request.tools]
    if request.think is not None:
        body["think"] = request.think
    return body


def wire_message(message: Message) -> dict[str, Any]:
    """One message as Ollama takes it: images as base64 beside the text; an assistant's
    tool calls with their arguments as objects; a tool's result naming its tool. An
    empty field is left out."""
    wire: dict[str, Any] = {"role": message.role}
    if message.content:
        wire["content"] = message.content
    if message.images:
        wire["images"] = [image.b64() for image in message.images]
    if message.tool_calls:
        wire["tool_calls"] = [
            {"function": {"name": call.name, "arguments": _argumentsjson_object(call.arguments)}}
            for call in message.tool_calls
        ]
    if message.tool_name:
        wire["tool_name"] = message.tool_name
    return wire


def _argumentsjson_object(arguments: str) -> dict[str, Any]:
    """A call's arguments as the object Ollama takes back; text that was not an object
    (the model wrote bad JSON, and was told so) goes back as an empty one."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _options(options: Mapping[str, object]) -> dict[str, object] | None:
    """cortan's option names in Ollama's (the table in cortan.core.options says which);
    ``keep_alive`` is a field of the request's own, beside them."""
    return to_ollama({k: v for k, v in options.items() if k != "keep_alive"}) or None


class _Lines(WholeLines):
    """A body in whole lines, each line end a LF (CR, LF and CRLF mean the same)."""

    def clean(self, block: bytes) -> bytes:
        return block.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in block else block


async def read_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[Any, None]:
    """Each line of a newline-delimited JSON body, parsed (any JSON: the caller checks).

    Bytes that are not UTF-8 become U+FFFD, as the SDK read them; a blank line is no
    JSON, as it was not for the SDK. Only LF and CR end a line: the SDK also split at
    U+0085 and U+2028, which JSON text may hold unescaped, and failed the answer there.
    A byte order mark before the first line (a proxy's, a Windows tool's) is no part of
    it: JSON's parser refused it, and the whole answer with it.
    """
    start = True
    async for block in _Lines(chunks):
        text = block.decode("utf-8", "replace")
        if start:
            text, start = text.removeprefix("\ufeff"), False
        for line in (text[:-1] if text.endswith("\n") else text).split("\n"):
            yield json.loads(line)


def checked(part: Any) -> dict[str, Any]:
    """A streamed line, unless it is the server's ``{"error": …}``, raised as
    :class:`Refused`; JSON that is not an object is a reply cortan cannot parse (the
    SDK failed "unexpectedly: AttributeError" on ``null``)."""
    if not isinstance(part, dict):
        raise ValueError("a streamed line is not a JSON object")
    if error := part.get("error"):
        raise Refused(error_of(error))
    result: dict[str, Any] = part
    return result


def chat_pieces(part: dict[str, Any], calls: int) -> list[str | Thinking | ToolCall]:
    """What one line of a chat brings: reasoning, text, whole tool calls (numbered on
    from ``calls``: Ollama's calls have no id)."""
    message = json_object(part.get("message"), "a message")
    pieces: list[str | Thinking | ToolCall] = []
    if thinking := json_text(message.get("thinking"), "thinking"):
        pieces.append(Thinking(thinking))
    if content := json_text(message.get("content"), "content"):
        pieces.append(content)
    tool_calls = message.get("tool_calls") or ()
    if not isinstance(tool_calls, list | tuple):
        raise ValueError("tool_calls is not a list")
    count_calls(calls + len(tool_calls))
    for number, call in enumerate(tool_calls, calls + 1):
        pieces.append(_tool_call(call, number))
    return pieces


def _tool_call(call: object, number: int) -> ToolCall:
    """One of Ollama's calls: its arguments arrive as an object, kept here as JSON text."""
    function = json_object(json_object(call, "a tool call").get("function"), "a call's function")
    name, arguments = function.get("name"), function.get("arguments")
    if not isinstance(name, str) or not isinstance(arguments, dict):
        raise ValueError("a tool call has no name or no arguments object")
    return ToolCall(f"call_{number}", without_surrogates(name), _arguments_text(arguments))


def _arguments_text(arguments: dict[str, Any]) -> str:
    """A call's arguments as JSON text, lone surrogates (``"\\ud800"``) as U+FFFD: kept,
    they failed the store's record of the call and the next request, which sends the
    call back (as a reply cortan "cannot parse", the server blamed)."""
    text = json.dumps(arguments, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        arguments = json.loads(without_surrogates(text))
    return json.dumps(arguments)


#: What the SDK's model took for a ``done`` of true besides true itself.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})


def is_done(part: dict[str, Any]) -> bool:
    """Whether this line is the chat's last; anything else than a yes is a no."""
    done = part.get("done")
    if done is True or done is None or done is False:
        return done is True
    return done.lower() in _TRUE if isinstance(done, str) else done == 1


def chat_finish(part: dict[str, Any]) -> Finish:
    """The final line's reason, counts and timings (each that cannot be one left out)."""
    timings = sane_timings({name: part.get(name) for name in DURATIONS})
    usage = sane_usage(part.get("prompt_eval_count"), part.get("eval_count"))
    reason = part.get("done_reason")
    return Finish(
        finish_reason=sane_reason(reason) if reason else "stop", usage=usage, server_timings=timings
    )


def shown_model(shown: object, name: str, provider: str) -> ModelInfo:
    """``/api/show``'s reply: the window, what the model can do, its details."""
    shown = json_object(shown, "a model's details")
    info = shown.get("model_info")
    window = next(
        (
            value
            for key, value in (info.items() if isinstance(info, dict) else ())
            if key.endswith(".context_length") and sane_window(value) is not None
        ),
        None,
    )
    details = shown.get("details")
    details = details if isinstance(details, dict) else {}
    capabilities = shown.get("capabilities")
    listed = capabilities if isinstance(capabilities, list) else ()
    return ModelInfo(
        name=name,
        provider=provider,
        family=text_or_none(details.get("family")),
        parameter_size=text_or_none(details.get("parameter_size")),
        context_length=window,
        capabilities=_capabilities(listed),
        quantization=text_or_none(details.get("quantization_level")),
    )


#: The largest layer cortan believes a pull reports: a pebibyte, past any model's.
MAX_PULL_BYTES = 1 << 50


#: Capabilities kept of ``/api/show``: Ollama names five or so; a server naming 100,000
#: had them all printed by ``cortan models show`` and held for every model.
MAX_CAPABILITIES = 32
#: The longest capability name kept ("completion" is 10 characters).
MAX_CAPABILITY = 64


def _capabilities(listed: Iterable[object]) -> tuple[str, ...] | None:
    """The first :data:`MAX_CAPABILITIES` names that are text, each cut to
    :data:`MAX_CAPABILITY` characters; None for none. A long name is cut, not left out:
    a list of only such names left out read as "not said", and thinking was asked of
    a model its server had said could not (Ollama refuses that with a 400)."""
    names = (c[:MAX_CAPABILITY] for c in listed if isinstance(c, str) and c)
    return tuple(itertools.islice(names, MAX_CAPABILITIES)) or None


def pull_progress(part: dict[str, Any]) -> PullProgress:
    """One line of ``/api/pull``; a size that is not a whole number of bytes between 0
    and :data:`MAX_PULL_BYTES` is left out (it printed as "-5 bytes", "1.1e+12 GiB")."""
    return PullProgress(
        text_or_none(part.get("status")) or "",
        text_or_none(part.get("digest")),
        _whole(part.get("total")),
        _whole(part.get("completed")),
    )


def _whole(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_PULL_BYTES else None
