"""Each API's chat body, turned into the one ``ChatRequest`` the engine runs.

Layer: serve. The conversation a client sends becomes the request's parts: its
system messages the system prompt (none: none, cortan's configured ``system`` is
for its own prompt, not for other programs' requests), its last message the
prompt (it must be the user's), the turns before it the history. Options are
mapped to cortan's names by the one table (:mod:`cortan.core.options`: OpenAI's
``max_completion_tokens`` and Ollama's ``num_predict`` are both ``max_tokens``), so
each provider upstream gets them in its own; a field neither API's reader knows is
dropped and named in a notice (:func:`tell_dropped`). How much a thinking model
should think becomes cortan's ``think``.
Structured output (OpenAI's ``response_format``, Ollama's ``format``) becomes the
request's JSON Schema, which the engine checks the answer against (and has the
model mend once), as ``cortan ask --schema`` does; the schema itself is checked
beside the event loop, on the engine's own threads for schema checks
(:func:`get_response_format`, :func:`get_format`: awaited; 503 with ``Retry-After``
when those are full). Images come inline (a ``data:`` URL, Ollama's base64),
never fetched (:mod:`cortan.serve.images`); the prompt's travel as its attachments,
which the guard holds to ``max_image_bytes`` as it holds ``ask -a``'s. What the
gateway cannot carry yet (tools, several choices) is refused with one sentence
rather than silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from cortan.core.errors import BusyError, UsageError
from cortan.core.messages import Message
from cortan.core.options import check_option, get_name
from cortan.core.requests import Attachment, ChatRequest
from cortan.serve import images
from cortan.serve.replies import RequestError, Scope, refuse

if TYPE_CHECKING:
    from cortan.config.settings import ServeSettings
    from cortan.core.images import Image
    from cortan.core.messages import Role
    from cortan.core.requests import Think, Trace

ROLES: Mapping[str, Role] = {
    "system": "system", "developer": "system", "user": "user", "assistant": "assistant",
}  # fmt: skip
log = logging.getLogger("cortan.serve")
MAX_CLIENT_CHARS = 100
TRUE = frozenset({b"1", b"true", b"yes"})
FALSE = frozenset({b"", b"0", b"false", b"no"})
#: How much to think, in the clients' words: Ollama's ``think`` (true, false or a level)
#: and OpenAI's ``reasoning_effort`` (a level, ``none`` for off). Ignored, a client's
#: ``think: false`` still had the model reason at length before each answer.
THINK_WORDS: Mapping[str, Think] = {
    "none": False, "minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
}  # fmt: skip


def get_messages(body: Mapping[str, Any], limits: ServeSettings) -> list[Message]:
    """The conversation of an OpenAI or Ollama body, checked."""
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise refuse("`messages` must be a non-empty list of {role, content} objects")
    if len(raw) > (limit := limits.max_messages):
        raise refuse(
            f"the conversation has {len(raw)} messages, over the gateway's limit of {limit} "
            "(setting serve.max_messages)", "too_many_messages", 413,
        )  # fmt: skip
    # Counted before any is decoded: a million four-character "images" in 8 MB of body
    # held the event loop, and every other client, for 10 s.
    if (count := sum(map(_count_images, raw))) > (limit := limits.max_images):
        raise refuse(
            f"the conversation has {count} images, over the gateway's limit of {limit} "
            "(setting serve.max_images)", "too_many_images", 413,
        )  # fmt: skip
    return [_message(index, item) for index, item in enumerate(raw, 1)]


#: A message's fields read (or refused) by :func:`_message`; earlier reasoning
#: (``thinking``, ``reasoning_content``) is left out as at the prompt, and the rest
#: of what the SDKs send back with an answer is empty. Any other (OpenAI's ``name``)
#: is named by :func:`get_dropped_in_messages`.
MESSAGE_FIELDS = frozenset(
    {"role", "content", "images", "tool_calls", "thinking", "reasoning_content"}
)


def get_dropped_in_messages(body: Mapping[str, Any]) -> list[str]:
    """The fields of the messages that are not passed on (``messages[].name``), once each."""
    found: dict[str, None] = {}
    items = body.get("messages")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            for key, value in item.items():
                if key not in MESSAGE_FIELDS and value not in (None, "", [], {}):
                    found[f"messages[].{key}"] = None
    return list(found)


def _count_images(item: object) -> int:
    if not isinstance(item, dict):
        return 0
    given, content = item.get("images"), item.get("content")
    parts = content if isinstance(content, list) else ()
    listed = len(given) if isinstance(given, list) else 0
    return listed + sum(1 for part in parts if _is_image(part))


def _is_image(part: object) -> TypeGuard[dict[str, Any]]:
    """Whether an OpenAI content part is an image (counted, then decoded, as one)."""
    return isinstance(part, dict) and part.get("type") == "image_url"


def _message(index: int, item: object) -> Message:
    if not isinstance(item, dict):
        raise refuse(f"message {index} is not a {{role, content}} object")
    if item.get("role") is None:
        raise refuse(f"message {index} has no `role`: system, user or assistant")
    role = ROLES.get(str(item.get("role")))
    if role is None:
        raise refuse(
            f"message {index} has role {str(item.get('role'))[:40]!r}: the gateway carries "
            "system, user and assistant messages (tool calls are not supported yet)",
            "unsupported",
        )  # fmt: skip
    if item.get("tool_calls"):
        raise refuse(
            f"message {index} carries `tool_calls`: tool calls are not supported by cortan "
            "serve yet", "unsupported",
        )  # fmt: skip
    text, shown = _content(index, item.get("content"))
    given = item.get("images") or []
    if not isinstance(given, list):
        raise refuse(f"message {index}'s `images` must be a list of base64 strings")
    shown += [
        images.from_base64(data, f"message {index}'s image {n}") for n, data in enumerate(given, 1)
    ]
    if shown and role != "user":
        raise refuse(f"message {index} is the {role}'s: only a user's message can carry images")
    return Message(role, text, tuple(shown))


def _content(index: int, content: object) -> tuple[str, list[Image]]:
    """The text of a message's content, and the images among its parts."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise refuse(f"message {index}'s content must be a string or a list of content parts")
    texts: list[str] = []
    shown: list[Image] = []
    for number, part in enumerate(content, 1):
        if _is_image(part):
            where = f"message {index}'s content part {number}"
            shown.append(images.from_url(part.get("image_url"), where))
        else:
            texts.append(_text_part(index, number, part))
    return "\n".join(texts), shown


def _text_part(index: int, number: int, part: object) -> str:
    """A text part's text; any other part but an image (audio, a file) refused by its type."""
    if isinstance(part, dict) and part.get("type") == "text":
        text = part.get("text")
        if not isinstance(text, str):  # str() made "None" of a null, and sent it
            raise refuse(f"message {index}'s content part {number} has no `text` string")
        return text
    if not isinstance(part, dict) or part.get("type") is None:
        raise refuse(
            f"message {index}'s content part {number} is not a {{type, text}} object "
            "(a list of content parts holds objects, not strings)"
        )
    shown = "".join(c for c in str(part.get("type"))[:40] if c.isprintable())
    raise refuse(
        f"message {index}'s content part {number} is of type {shown!r}: cortan serve takes "
        "text and image_url parts (audio and files are not supported yet)", "unsupported",
    )  # fmt: skip


def refuse_unsupported(body: Mapping[str, Any], fields: Sequence[str]) -> None:
    """Refuse fields that change what an answer is, which the gateway cannot honour yet."""
    for name in fields:
        value = body.get(name)
        if value not in (None, False, [], {}, "", "none", "text", ["text"]) and not (
            isinstance(value, dict) and value.get("type") == "text"
        ):
            raise refuse(f"`{name}` is not supported by cortan serve yet", "unsupported")


def get_model(body: Mapping[str, Any]) -> str | None:
    """The model name asked for; empty or missing means cortan's default model."""
    model = body.get("model")
    if model is None or model == "":
        return None
    if not isinstance(model, str) or len(model) > 200:
        raise refuse("`model` must be a model name: provider:model, an alias or a bare name")
    if not model.isprintable():  # a line break would also start a line in the access log
        raise refuse("`model` must be a model name: it holds a control character or a line break")
    return model.strip() or None


def make_request(
    request_id: int,
    messages: list[Message],
    *,
    model: str | None,
    options: Mapping[str, object],
    client: str,
    trace: Trace,
    allow_secrets: bool = False,
    think: Think = None,
    schema: Mapping[str, Any] | None = None,
    trim: bool = True,
) -> ChatRequest:
    """The engine's request for this conversation (see the module docstring)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns = [m for m in messages if m.role != "system"]
    if not turns or turns[-1].role != "user":
        raise refuse("the last message must be the user's: it is the prompt to answer")
    prompt = turns[-1]
    if not prompt.content.strip() and not prompt.images:  # the guard's sentence: stdin
        raise refuse("the prompt is empty: the last message, the user's, has no text")
    return ChatRequest(
        request_id,
        prompt.content,
        # The guard takes images among the attachments, within max_image_bytes.
        attachments=tuple(Attachment(f"image {n}", i.data) for n, i in enumerate(prompt.images, 1)),
        model=model,
        system=system,
        history=tuple(turns[:-1]),
        options=tuple(options.items()),
        allow_secrets=allow_secrets,
        think=think,
        schema=schema,
        client=client,
        trace=trace,
        trim=trim,
    )


#: The schema of "any JSON object": OpenAI's ``json_object``, Ollama's ``"json"``.
ANY_OBJECT: Mapping[str, Any] = {"type": "object"}


#: How a schema is checked: the engine's (GatewayServices.check_schema).
Check = Callable[[object], Awaitable[None]]


async def get_response_format(body: Mapping[str, Any], check: Check) -> Mapping[str, Any] | None:
    """The schema OpenAI's ``response_format`` asks the answer to fill; None: plain text."""
    value = body.get("response_format")
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ANY_OBJECT
    if kind == "json_schema":
        spec = value.get("json_schema")
        return await _checked(spec.get("schema") if isinstance(spec, dict) else None,
                              "`response_format.json_schema.schema`", check)  # fmt: skip
    raise refuse("`response_format` must be {type: text}, {type: json_object} or "
                 "{type: json_schema, json_schema: {name, schema}}")  # fmt: skip


async def get_format(body: Mapping[str, Any], check: Check) -> Mapping[str, Any] | None:
    """The schema Ollama's ``format`` asks the answer to fill; None: plain text."""
    value = body.get("format")
    if value is None or value == "":
        return None
    if value == "json":
        return ANY_OBJECT
    return await _checked(value, '`format` (`"json"` or a JSON Schema)', check)


async def _checked(schema: object, what: str, check: Check) -> Mapping[str, Any]:
    """``schema``, once it is one cortan will use; checked beside the event loop, as a
    check may take its whole deadline (1 s), and the loop answers every other client."""
    try:
        await check(schema)
    except UsageError as exc:
        raise refuse(f"{what}: {exc}") from None
    except BusyError as exc:
        raise RequestError(503, exc.kind, str(exc), {"retry-after": str(exc.retry_after)}) from None
    assert isinstance(schema, dict)  # check_schema refuses anything else
    return schema


def get_flag(body: Mapping[str, Any], field: str, default: bool) -> bool:
    """A true/false field (``stream``); missing or null: ``default``. Anything else is
    refused, as the APIs refuse it, rather than read as one or the other."""
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise refuse(f"`{field}` must be true or false")
    return value


def get_include_usage(body: Mapping[str, Any]) -> bool:
    """OpenAI's ``stream_options.include_usage``: a usage chunk at the end of a stream."""
    asked = body.get("stream_options")
    if asked is None:
        return False
    if not isinstance(asked, dict):
        raise refuse('`stream_options` must be an object, such as {"include_usage": true}')
    return get_flag(asked, "include_usage", False)


def get_think(body: Mapping[str, Any], field: str) -> Think:
    """How much the model should think (``field``: the API's name); None: its default."""
    value = body.get(field)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and (word := value.strip().lower()) in THINK_WORDS:
        return THINK_WORDS[word]
    raise refuse(f"`{field}` must be true, false, or one of {', '.join(THINK_WORDS)}")


def get_options(
    source: Mapping[str, Any],
    handled: Collection[str] = (),
    names: Collection[str] | None = None,
) -> tuple[dict[str, object], list[str]]:
    """The generation options among ``source``'s fields, in cortan's names; and the
    fields that are neither an option nor ``handled``, which the gateway drops.

    Any spelling the table in :mod:`cortan.core.options` knows is taken (OpenAI's
    ``max_completion_tokens``, Ollama's ``num_predict``) and checked there, so each
    provider upstream gets it in its own name. ``names``: the options this object may
    hold (Ollama's top level holds only ``keep_alive``); None: every one.
    """
    options: dict[str, object] = {}
    dropped: list[str] = []
    for key, value in source.items():
        if key in handled or value is None:
            continue
        name = get_name(key)
        if name is None or (names is not None and name not in names):
            dropped.append(key)
            continue
        try:
            name, options[name] = check_option(key, value)
        except UsageError as exc:
            raise refuse(str(exc)) from None
    return options, dropped


#: The most dropped fields a notice names (the rest are counted).
MAX_NAMED = 8


def tell_dropped(dropped: Sequence[str]) -> str | None:
    """The notice naming the fields the gateway did not pass on, written to the log too
    (the endpoints hand it to the client as the engine's notices are). None: none."""
    if not dropped:
        return None
    shown = ["".join(c for c in name[:40] if c.isprintable() and c.isascii()) or "?"
             for name in dropped[:MAX_NAMED]]  # fmt: skip
    more = f" and {len(dropped) - MAX_NAMED} more" if len(dropped) > MAX_NAMED else ""
    text = (
        f"cortan serve did not pass on {', '.join(shown)}{more}: "
        "no provider takes it through the gateway (docs/serve.md)"
    )
    log.info("%s", text)
    return text


def get_client(scope: Mapping[str, Any], api: str) -> str:
    """Who asked: ``X-Cortan-Client`` or the User-Agent, after the API used; printable."""
    headers = dict(scope["headers"])
    raw = headers.get(b"x-cortan-client") or headers.get(b"user-agent") or b"unknown"
    name = "".join(c for c in raw.decode("latin-1") if c.isprintable())[:MAX_CLIENT_CHARS]
    return f"{api} {name.strip() or 'unknown'}"


def allows_trim(scope: Scope) -> bool:
    """``X-Cortan-Trim: refuse``: 400 ``context_overflow`` rather than earlier turns left
    out (a client that keeps its own history, and would rather cut it itself)."""
    value: bytes = dict(scope["headers"]).get(b"x-cortan-trim", b"allow").strip().lower()
    if value not in (b"allow", b"refuse"):
        shown = value[:40].decode("latin-1")
        raise refuse(f"`X-Cortan-Trim` must be `allow` or `refuse`, not {shown!r}")
    return value == b"allow"


def allows_secrets(scope: Scope) -> bool:
    """``X-Cortan-Allow-Secrets: true``: the client's ``--allow-secrets``. Another value
    is a 400, as ``X-Cortan-Trim``'s is: ``maybe`` or a typo kept the guard on in silence."""
    value: bytes = dict(scope["headers"]).get(b"x-cortan-allow-secrets", b"").strip().lower()
    if value in TRUE:
        return True
    if value not in FALSE:
        shown = value[:40].decode("latin-1")
        raise refuse(f"`X-Cortan-Allow-Secrets` must be true or false, not {shown!r}")
    return False
