"""Text from outside cortan: decoding bytes, refusing what cannot be text, cleaning it.

Layer: core. The guard, attachments and the shell all read text that came from
somewhere else (stdin, files, argv); these helpers say in one sentence why it
cannot be used, or hand it back decoded and cleaned.
"""

from __future__ import annotations

import codecs
import re

from cortan.core.errors import InputError

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


def check_unicode(text: str, label: str) -> str:
    """Refuse lone surrogates: what Python makes of bytes in argv that are not UTF-8.

    They cannot be encoded for the wire, and would otherwise fail much later as a
    reply cortan "cannot parse".
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        byte = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise InputError(
            f"{label} is not valid UTF-8 text ({byte} at character {exc.start + 1}); "
            "check the terminal's or the script's encoding"
        ) from None
    return text


def clean_text(text: str) -> str:
    """Unify line endings and drop control characters other than newline and tab."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROL_CHARS.sub("", text)
