"""The input validator: the first stop of every prompt, before anything leaves the machine.

It rejects what no model should be sent (an empty prompt, binary data,
undecodable bytes, input past the size limit), each with one sentence naming
what was wrong and where, and passes everything else on normalised: decoded,
line endings unified, control characters other than newline and tab removed.
"""

from __future__ import annotations

import codecs
import re

from cortan.engine.bus import EventBus
from cortan.engine.events import (
    Attachment,
    ChatFailed,
    ChatRequested,
    ChatValidated,
    TextAttachment,
)
from cortan.errors import InputError

# C0 controls but \t and \n, DEL, and C1 controls: never meaningful in a prompt.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def format_size(n: int) -> str:
    """Sizes for humans: 1 MiB, 512 KiB, 10 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def decode_text(data: bytes, label: str) -> str:
    """Decode ``data`` as text (UTF-8, or UTF-16/32 when a BOM says so) or refuse it."""
    encoding = next((enc for bom, enc in BOMS if data.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in data:
        raise InputError(f"{label} looks like binary data (it contains NUL bytes); send text only")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not valid {encoding.upper().removesuffix('-SIG')} text "
            f"(byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    if "\x00" in text:
        raise InputError(f"{label} looks like binary data (it contains NUL characters)")
    return text


def clean_text(text: str) -> str:
    """Unify line endings and drop control characters other than newline and tab."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROL_CHARS.sub("", text)


class InputValidator:
    """Checks each ChatRequested; publishes ChatValidated or ChatFailed."""

    def __init__(self, bus: EventBus, *, max_bytes: int) -> None:
        self._bus = bus
        self.max_bytes = max_bytes
        bus.subscribe(ChatRequested, self.on_requested)

    async def on_requested(self, event: ChatRequested) -> None:
        try:
            validated = self.validate(event)
        except InputError as exc:
            await self._bus.publish(ChatFailed(event.request_id, "input", str(exc)))
            return
        await self._bus.publish(validated)

    def validate(self, event: ChatRequested) -> ChatValidated:
        """Decode and clean the request, or raise InputError with the reason."""
        self._check_size(event)
        attachments = tuple(self._decode(a) for a in event.attachments)
        prompt = clean_text(event.prompt)
        attachments = tuple(a for a in attachments if a.text.strip())
        if not prompt.strip() and not attachments:
            raise InputError("the prompt is empty: give a question, or pipe text in")
        return ChatValidated(event, prompt.strip(), attachments)

    def _check_size(self, event: ChatRequested) -> None:
        total = len(event.prompt.encode("utf-8", "surrogatepass"))
        total += sum(len(a.data) for a in event.attachments)
        if total > self.max_bytes:
            raise InputError(
                f"the input is {format_size(total)}, over the {format_size(self.max_bytes)} "
                f"limit (setting max_input_bytes)"
            )

    @staticmethod
    def _decode(attachment: Attachment) -> TextAttachment:
        text = clean_text(decode_text(attachment.data, attachment.label))
        return TextAttachment(attachment.label, text)
