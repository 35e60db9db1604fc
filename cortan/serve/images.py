"""Images a client sends inline, as the model will be shown them.

Layer: serve. OpenAI's clients send an image as a content part whose ``image_url``
is a ``data:`` URL; Ollama's as base64 in a message's ``images`` (and generate's).
Either becomes a :class:`cortan.core.images.Image`, known by its bytes (a PNG, JPEG,
WebP or GIF), never by the type a client declares. A URL to fetch is refused: the
gateway contacts no host the user did not configure, and fetching what a request
names would let any local program make cortan reach anywhere.
"""

from __future__ import annotations

import base64
import binascii

from cortan.core.images import Image, sniff_image
from cortan.serve.replies import refuse

KINDS = "a PNG, JPEG, WebP or GIF image"


def from_base64(text: object, where: str) -> Image:
    """An image sent as base64 (Ollama's ``images``), or the sentence saying why not."""
    if not isinstance(text, str):
        raise refuse(f"{where} must be a base64 string")
    return _decoded(text, where)


def from_url(value: object, where: str) -> Image:
    """An image sent as a ``data:`` URL (OpenAI's ``image_url``), or why not."""
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        raise refuse(f"{where} has no `image_url.url` string")
    head, comma, payload = url.partition(",")
    if not head.lower().startswith("data:"):
        shown = "".join(c for c in url[:40] if c.isprintable())
        raise refuse(
            f"{where} is a URL to fetch ({shown!r}): cortan serve fetches nothing a request "
            "names; send the image inline, as a data: URL", "unsupported",
        )  # fmt: skip
    if not comma or not head.lower().endswith(";base64"):
        raise refuse(f"{where} is a data: URL that is not base64 (data:image/png;base64,…)")
    return _decoded(payload, where)


def _decoded(text: str, where: str) -> Image:
    """The image whose base64 is ``text``, known by its bytes, whatever it was said to be.

    Read as Ollama and browsers read it: line breaks and spaces (``base64`` without
    ``-w0``, MIME's 76-character lines) and missing padding are let be, and the URL-safe
    alphabet is read too; anything else outside the alphabet is refused.
    """
    text = "".join(text.split())
    text += "=" * (-len(text) % 4 if len(text) % 4 != 1 else 0)
    try:
        data = base64.b64decode(
            text, altchars=b"-_" if "-" in text or "_" in text else None, validate=True
        )
    except (binascii.Error, ValueError):
        raise refuse(f"{where} is not valid base64") from None
    mime = sniff_image(data)
    if mime is None:
        raise refuse(f"{where} is not {KINDS} (known by its bytes)", "unsupported")
    return Image(mime, data)
