"""The context manager: turns a validated prompt into the messages a model is sent.

It adds the system prompt and the conversation so far, and frames attached data
(stdin, files) as labelled, delimited blocks so the model can tell the user's
instruction from the data it is about. Where the instruction goes relative to
the data (``instruction_position``) is a setting: after is the default, since
models follow an instruction that comes after long data more reliably.
"""

from __future__ import annotations

import re

from cortan.engine.bus import EventBus
from cortan.engine.events import ChatPrepared, ChatValidated, TextAttachment
from cortan.providers.base import Message

FENCE_RUN = re.compile(r"`{3,}")


def frame(attachment: TextAttachment) -> str:
    """A labelled fenced block whose fence cannot occur inside the data."""
    longest = max((len(m) for m in FENCE_RUN.findall(attachment.text)), default=2)
    fence = "`" * max(3, longest + 1)
    body = attachment.text if attachment.text.endswith("\n") else attachment.text + "\n"
    return f"{attachment.label}:\n{fence}\n{body}{fence}"


def compose_user_message(
    prompt: str, attachments: tuple[TextAttachment, ...], instruction_position: str
) -> str:
    """The user's turn: the instruction and the framed data, in the configured order."""
    blocks = [frame(a) for a in attachments]
    if not prompt:
        if len(attachments) == 1:  # stdin alone is the prompt itself
            return attachments[0].text
        return "\n\n".join(blocks)
    parts = [*blocks, prompt] if instruction_position == "after" else [prompt, *blocks]
    return "\n\n".join(parts)


class ContextManager:
    """Builds each request's messages; later versions also trim to the context window."""

    def __init__(
        self, bus: EventBus, *, system: str | None, instruction_position: str = "after"
    ) -> None:
        self._bus = bus
        self.system = system
        self.instruction_position = instruction_position
        bus.subscribe(ChatValidated, self.on_validated)

    async def on_validated(self, event: ChatValidated) -> None:
        await self._bus.publish(ChatPrepared(event.request, event.request.model, self.build(event)))

    def build(self, event: ChatValidated) -> tuple[Message, ...]:
        system = event.request.system if event.request.system is not None else self.system
        content = compose_user_message(event.prompt, event.attachments, self.instruction_position)
        messages = [Message("system", system)] if system else []
        messages.extend(event.request.history)
        messages.append(Message("user", content))
        return tuple(messages)
