"""Images that travel with a prompt: recognised by their bytes, never by their name.

Layer: core. A PNG, JPEG, WebP or GIF is known by its first bytes (its magic
number), so a photo saved as ``notes.txt`` is still an image and a text file named
``cat.png`` is still text. Providers send an image as the wire wants it: Ollama as
base64 in ``images``, OpenAI-compatible servers as a data-URL content part.
"""

from __future__ import annotations

import base64
import hashlib
from typing import NamedTuple


class Image(NamedTuple):
    """One image: its media type and bytes."""

    mime: str
    data: bytes

    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{self.b64()}"

    @property
    def digest(self) -> str:
        """The SHA-256 of the bytes: how the store keeps an image once, whatever its name."""
        return hashlib.sha256(self.data).hexdigest()


def sniff_image(data: bytes) -> str | None:
    """The media type of ``data`` if it is an image cortan can send, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None
