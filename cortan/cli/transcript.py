"""Stored conversations as text: transcripts, markdown and JSON exports, log lines.

Layer: cli (formatting for ``cortan sessions`` and ``cortan logs``; stdlib only).
Everything here returns strings or JSON-ready dicts; the commands decide where
they go and sanitise what reaches a terminal. Times are local in text meant for
reading, ISO 8601 UTC in exports meant for programs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cortan.core.text import make_visible, one_line
from cortan.render.columns import fit_columns

if TYPE_CHECKING:
    from cortan.store import Conversation, StoredMessage
    from cortan.store.records import StoredToolCall

PREVIEW = 60


def local_time(seconds: float, *, with_seconds: bool = False) -> str:
    return time.strftime(
        "%Y-%m-%d %H:%M" + (":%S" if with_seconds else ""), time.localtime(seconds)
    )


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def preview(text: str, width: int = PREVIEW) -> str:
    """One line: whitespace collapsed, cut with an ellipsis."""
    return one_line(text, width)


def tokens(message: StoredMessage) -> str:
    if message.prompt_tokens is None and message.completion_tokens is None:
        return ""
    prompt = "?" if message.prompt_tokens is None else message.prompt_tokens
    completion = "?" if message.completion_tokens is None else message.completion_tokens
    return f"{prompt}+{completion} tok"


def describe_message(message: StoredMessage, who: str) -> str:
    """A message's heading: who, when, how it ended, what it cost (`` · `` between)."""
    parts = [who, local_time(message.created, with_seconds=True)]
    if message.status != "complete":
        parts.append(message.status)
    if tokens(message):
        parts.append(tokens(message))
    if message.duration is not None and message.role == "assistant":
        parts.append(f"{message.duration:.1f} s")
    if message.request_id and message.role == "user":  # a gateway request's, to follow it
        parts.append(f"request {make_visible(message.request_id)}")
    return " · ".join(parts)


# -- one conversation ---------------------------------------------------------------


def conversation_header(conversation: Conversation) -> str:
    # Names a person picks a conversation by: nothing invisible may hide in them.
    parts = [make_visible(conversation.label), make_visible(conversation.model or "default model")]
    parts.append(f"{conversation.message_count} messages")
    parts.append(local_time(conversation.updated))
    if conversation.client:  # a gateway request: who sent it, and the id it was given
        parts.append(make_visible(conversation.client))
    if conversation.request_id:
        parts.append(f"request {make_visible(conversation.request_id)}")
    return " · ".join(parts)


def to_text(conversation: Conversation, messages: list[StoredMessage]) -> str:
    """The transcript ``cortan sessions show`` prints."""
    out = [conversation_header(conversation)]
    if conversation.system:
        out.append(f"system: {conversation.system}")
    for message in messages:
        who = "you" if message.role == "user" else make_visible(message.model or message.role)
        out.append(f"\n── {describe_message(message, who)}")
        if message.thinking:
            out.append(f"(thinking) {message.thinking.strip()}\n")
        if message.images:
            out.append(f"({_count_images(message)} attached)")
        out.extend(f"(tool) {describe_tool_call(call)}" for call in message.tool_calls)
        out.append(message.content if message.content else "(no answer)")
    return "\n".join(out) + "\n"


def describe_tool_call(call: StoredToolCall) -> str:
    """One line for a stored tool call: the call, how it was decided, what it gave."""
    decided = f", {call.decided_by}" if call.decided_by else ""
    output = call.output.strip().splitlines()[0] if call.output.strip() else ""
    return (
        f"{preview(call.name, 40)} {preview(call.arguments, 80)} → "
        f"{call.status}{decided}: {preview(output, 80)}"
    )


def to_markdown(conversation: Conversation, messages: list[StoredMessage]) -> str:
    """A markdown document of the conversation, for notes and sharing."""
    title = conversation.name or f"Conversation {conversation.id}"
    out = [f"# {title}", ""]
    out.append(f"- id: {conversation.id}")
    out.append(f"- created: {iso_time(conversation.created)}")
    out.append(f"- model: {conversation.model or 'default'}")
    if conversation.system:
        out += ["", "## System", "", conversation.system]
    for message in messages:
        who = "User" if message.role == "user" else f"Assistant ({message.model or '?'})"
        out += ["", f"## {describe_message(message, who)}", ""]
        if message.thinking:
            thought = message.thinking.strip()
            out += ["<details><summary>Thinking</summary>", "", thought, "", "</details>", ""]
        if message.images:
            out += [f"*{_count_images(message)} attached*", ""]
        if message.tool_calls:
            out += [f"- tool: `{describe_tool_call(c)}`" for c in message.tool_calls] + [""]
        out.append(message.content)
    return "\n".join(out).rstrip("\n") + "\n"


def _count_images(message: StoredMessage) -> str:
    count = len(message.images)
    return "1 image" if count == 1 else f"{count} images"


def to_json(conversation: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    """The conversation as data; keys are stable for scripts."""
    return {
        "id": conversation.id,
        "name": conversation.name,
        "created": iso_time(conversation.created),
        "updated": iso_time(conversation.updated),
        "model": conversation.model,
        "system": conversation.system,
        "client": conversation.client,
        "request_id": conversation.request_id,
        "messages": [message_to_json(m) for m in messages],
    }


def summary_to_json(conversation: Conversation) -> dict[str, Any]:
    """A conversation in ``sessions list --json``: counts instead of messages."""
    return {
        **to_json(conversation, []),
        "messages": conversation.message_count,
        "first_prompt": conversation.title,
    }


def message_to_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "created": iso_time(message.created),
        "status": message.status,
        "model": message.model,
        "provider": message.provider,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "duration_s": None if message.duration is None else round(message.duration, 4),
        "thinking": message.thinking,
        "request_id": message.request_id,
        "images": [
            {"mime": image.mime, "sha256": image.digest, "bytes": len(image.data)}
            for image in message.images
        ],
        "tool_calls": [
            {
                "name": call.name,
                "arguments": call.arguments,
                "status": call.status,
                "decided_by": call.decided_by,
                "output": call.output,
                "duration_s": None if call.duration is None else round(call.duration, 4),
            }
            for call in message.tool_calls
        ],
    }


# -- listings -----------------------------------------------------------------------


def conversation_rows(conversations: list[Conversation], *, width: int | None = None) -> list[str]:
    """Aligned lines for ``cortan sessions list``, with a heading; within ``width`` (a
    terminal's), leaving out model, date and count before a row would wrap."""
    rows = [("ID", "NAME", "MSGS", "UPDATED", "MODEL", "FIRST PROMPT")]
    for c in conversations:
        cells = (str(c.id), preview(make_visible(c.name or ""), 24), str(c.message_count))
        model = make_visible(c.model or "")
        rows.append((*cells, local_time(c.updated), model, c.title))
    return fit_columns(rows, right={0, 2}, width=_inside(width), drops=(4, 3, 2), cap=40)


def log_rows(messages: list[StoredMessage], *, width: int | None = None) -> list[str]:
    """Aligned lines for ``cortan logs``: one message each, newest first.

    With ``width`` (a terminal's), the text column is cut to what the others leave,
    and a narrow window goes without tokens, model and time, so that no line wraps.
    """
    rows = [("ID", "TIME", "SESSION", "ROLE", "MODEL", "TOKENS", "TEXT")]  # ID: for `logs rm`
    for m in messages:
        text = " ".join(m.content.split())
        if m.status != "complete":
            text = f"[{m.status}] {text}"
        if m.tool_calls:
            names = ", ".join(dict.fromkeys(c.name for c in m.tool_calls))
            text = f"[tools: {make_visible(names)}] {text}"
        label = preview(make_visible(m.conversation_label), 24)
        model = make_visible(m.model or "")
        rows.append((str(m.id), local_time(m.created), label, m.role, model, tokens(m), text))
    return fit_columns(
        rows, right={0}, width=_inside(width), drops=(5, 4, 1), least=10, cap=PREVIEW
    )


def _inside(width: int | None) -> int | None:
    """A terminal's width less one column: a line that fills the last column wraps in some."""
    return None if width is None else width - 1


def log_to_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "conversation_id": message.conversation_id,
        "conversation": message.conversation_name,
        **message_to_json(message),
    }
