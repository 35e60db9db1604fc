"""Terminal-safe text: model output must not be able to drive the terminal.

Layer: render (stdlib only). Everything that reaches the terminal from outside cortan
(answer text, server error messages, model names from a server) goes through
`sanitize` first, so that an answer cannot clear the screen, move the cursor, set the
window title, write the clipboard (OSC 52), hide a link target (OSC 8), or reorder what
the reader sees with bidirectional overrides.

What is neutralised, and how it is shown:

* C0 controls U+0000-U+001F except ``\\n`` and ``\\t`` (this includes ESC, so every
  CSI, OSC, DCS, APC, PM and SOS sequence loses its introducer and the rest of it is
  plain text), and DEL U+007F: replaced by their Unicode *control picture*
  (U+2400-U+241F, U+2421), e.g. ESC becomes ``␛`` and ``\\x1b[2J`` shows as ``␛[2J``.
  A picture is one column wide, so tables and code keep their alignment, and unlike a
  written-out ``\\x1b`` it cannot be confused with the same text typed in an answer
  about escape codes.
* ``\\r``: a carriage return can overwrite the start of a line, so a lone one is shown
  as ``␍``; the pair ``\\r\\n`` (a network line ending) becomes ``\\n``.
* Lone surrogates U+D800-U+DFFF (a ``"\\udc9b"`` escape in a server's JSON, bytes
  that were not UTF-8): they cannot be encoded for a terminal, and ``\\udc9b`` would
  become a raw 0x9B byte (an 8-bit CSI) under ``surrogateescape``; each becomes U+FFFD,
  the replacement character, issue 15.
* C1 controls U+0080-U+009F (the 8-bit CSI U+009B among them) and the bidirectional
  controls U+061C, U+200E, U+200F, U+202A-U+202E and U+2066-U+2069 have no control
  picture; they are written as ``<U+XXXX>`` (``<`` followed by ``U+`` is neither an HTML
  tag nor an autolink to a markdown parser, so the form survives markdown rendering).

Everything else (printable text in any script, emoji with their joiners, combining
marks, ``\\n``, ``\\t``) is returned unchanged, and text with nothing to neutralise is
returned as the very same object, after one regex scan.

Sanitising is a per-character mapping, so a stream needs no sanitiser state: each piece
can be sanitised on its own, and ``sanitize(a + b) == sanitize(a) + sanitize(b)``. The
one exception is a ``\\r\\n`` pair split between two pieces (``a`` ends in ``\\r``, ``b``
starts with ``\\n``), which a streaming caller handles by holding back a trailing
``\\r`` until the next piece arrives (`cortan.render.markdown.MarkdownStream` does).
"""

from __future__ import annotations

import re

__all__ = ["sanitize"]

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

# One character class for the whole dangerous set: C0 minus \t (09) and \n (0a),
# DEL and C1 (7f-9f), and the bidi controls.
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")


def _make_table() -> dict[int, str]:
    """Map every unsafe code point to its visible form (see the module docstring)."""
    table = {code: chr(0x2400 + code) for code in range(0x20) if code not in (0x09, 0x0A)}
    table[0x7F] = "\u2421"
    for code in [*range(0x80, 0xA0), *map(ord, _BIDI)]:
        table[code] = f"<U+{code:04X}>"
    for code in range(0xD800, 0xE000):
        table[code] = "\ufffd"
    return table


_TABLE = _make_table()


def sanitize(text: str) -> str:
    """Return `text` with every terminal control replaced by a visible stand-in.

    Args:
        text: Text from outside cortan (a piece of an answer, an error message).

    Returns:
        The text, safe to write to a terminal; `text` itself when it holds no control.
    """
    if _UNSAFE.search(text) is None:
        return text
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return text.translate(_TABLE)
