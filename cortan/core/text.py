"""Text from outside cortan: decoding bytes, refusing what cannot be text, cleaning it.

Layer: core. The guard, attachments and the shell all read text that came from
somewhere else (stdin, files, argv); these helpers say in one sentence why it
cannot be used, or hand it back decoded and cleaned.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence

from cortan.core.errors import InputError, UsageError

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


def count_of(n: int, noun: str) -> str:
    """``1 model``, ``2 models``: a count as a sentence says it (nouns with a plain -s)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def decode_text(data: bytes, label: str) -> str:
    """Decode ``data`` as text (UTF-8, or UTF-16/32 when a BOM says so) or refuse it.

    ``label`` is the frame's (``File notes.txt``, ``Input from stdin``); the refusal is
    a sentence of its own, so it starts in lower case, as every other one does.
    """
    label = label[:1].lower() + label[1:]
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


def check_argument(text: str, label: str) -> str:
    """``text`` from the command line, or UsageError (exit 2) when it is not UTF-8.

    A name or a query in bytes the terminal did not encode as UTF-8 reached the store
    as lone surrogates and ended as an "internal error" (issue 15).
    """
    try:
        return check_unicode(text, label)
    except InputError as exc:
        raise UsageError(str(exc)) from None


_SURROGATES = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (a ``"\\ud800"`` escape in a server's JSON) as
    U+FFFD: it cannot be encoded, so it failed whatever stored or sent the text on."""
    return _SURROGATES.sub("\ufffd", text)


def find_lone_surrogate(value: object) -> tuple[tuple[str | int, ...], bool] | None:
    """Where in ``value`` (JSON-like: dicts, lists, strings) a string or a key holds a
    lone surrogate: the keys and indexes that lead there (``("messages", 0, "content")``;
    none for ``value`` itself) and whether it is a key there; None if nowhere.

    Such text cannot be encoded: from a request's JSON (a ``"\\ud800"`` escape alone) or
    a CORTAN_* variable, it failed whatever stored it or sent it on, far from where it
    came in. Iterative: the nesting is bounded only by json's own recursion.
    """
    stack: list[tuple[object, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATES.search(item):
                return path, False
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and _SURROGATES.search(key):
                    return path, True
                stack.append((inner, (*path, str(key))))
        elif isinstance(item, list | tuple):
            stack.extend((inner, (*path, n)) for n, inner in enumerate(item))
    return None


def json_path(parts: Sequence[str | int]) -> str:
    """Keys and indexes as a reader writes them: ``messages[0].content``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def clean_text(text: str) -> str:
    """Unify line endings and drop control characters other than newline and tab."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROL_CHARS.sub("", text)


# What a reader cannot see or cannot trust on a terminal: C0 but \t and \n, DEL, C1,
# bidirectional controls, zero-width and joiner characters, the BOM, the soft hyphen,
# line and paragraph separators, TAG characters, and lone surrogates.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff\U000e0000-\U000e007f]"
)


def _visible_form(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the control picture: ESC shows as U+241B
    if code == 0x7F:
        return "\u2421"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return f"<U+{code:04X}>"


def make_visible(text: str) -> str:
    """``text`` with everything a reader could not see shown as a visible stand-in.

    For text a person must trust before acting on it (a command about to run, a tool's
    arguments, a model or session name): what is approved must be what runs, so an
    invisible character cannot hide in it. Stricter than the terminal sanitiser in
    ``cortan.render.sanitize``, which keeps zero-width joiners so emoji render.
    """
    if _INVISIBLE.search(text) is None:
        return text
    return _INVISIBLE.sub(_visible_form, text)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis saying it was cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


#: ASCII whitespace only: ``str.split()`` also takes U+2028, U+2029, U+0085 and the
#: no-break spaces for whitespace, and a separator hidden in a model's name then showed
#: as a plain space instead of its ``<U+2028>`` stand-in (tests/security/test_invisible.py).
_BLANKS = re.compile(r"[ \t\n\r\f\v]+")


def one_line(text: str, width: int) -> str:
    """``text`` on one line (each run of blanks one space), shortened to ``width``."""
    return shorten(_BLANKS.sub(" ", text).strip(" "), width)
