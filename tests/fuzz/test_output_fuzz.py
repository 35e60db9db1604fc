"""The output paths under arbitrary model text: nothing but rich's own styles reaches a terminal.

The sanitiser's two promises (no control survives; printable text is unchanged; more in
tests/render/test_sanitize.py), then the writers that use it, piece by piece as a stream
arrives: the plain writer (pipes), the markdown renderer on a colour terminal, and the
JSON report.
"""

from __future__ import annotations

import io
import json
import re

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from cortan.core.events import ChatFinished
from cortan.render.markdown import MarkdownStream
from cortan.render.plain import PlainWriter
from cortan.render.report import write_report
from cortan.render.sanitize import sanitize
from tests.fuzz.profiles import examples

C0 = {chr(c) for c in range(0x20)} - {"\n", "\t"}
C1 = {chr(c) for c in range(0x80, 0xA0)}
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
DANGEROUS = frozenset(C0 | C1 | BIDI | {"\x7f"})
# rich's own output: colours and styles (SGR), cursor hide/show, erase line and cursor
# up after a carriage return; and the live view of a streaming answer (render/region.py):
# synchronized output, cursor up, down and to a column, erase below and to the right.
RICH = re.compile(r"\x1b\[[0-9;]*m|\r?\x1b\[(?:\?25[lh]|\?2026[hl]|2K|[0-9]*[ABGJK])")

ESCAPES = st.sampled_from(
    [
        "\x1b[2J",
        "\x1b]0;title\x07",
        "\x1b]8;;http://x/\x1b\\",
        "\x1b]52;c;YQ==\x07",
        "\x1bP1$r\x1b\\",
        "\x9b2J",
        "\u202e",
        "\r",
        "\r\n",
        "\x7f",
        "\x00",
    ]
)
MARKDOWN = st.sampled_from(
    ["# ", "\n\n", "```\n", "\n```\n", "- ", "| a | b |\n|---|---|\n", "`", "**", "[x](http://y)"]
)
PIECE = st.one_of(st.text(max_size=10), ESCAPES, MARKDOWN)
PIECES = st.lists(PIECE, max_size=25)


@examples(300)
@given(st.one_of(st.text(), PIECES.map("".join)))
def test_sanitised_text_holds_no_control(text: str) -> None:
    assert not DANGEROUS & set(sanitize(text))


@examples(300)
@given(st.text().filter(lambda text: not DANGEROUS & set(text)))
def test_printable_text_is_unchanged(text: str) -> None:
    assert sanitize(text) == text


@examples(200)
@given(PIECES)
def test_plain_writer_streams_exactly_the_sanitised_text(pieces: list[str]) -> None:
    out = io.StringIO()
    writer = PlainWriter(out)
    for piece in pieces:
        writer.write(piece)
    writer.end()
    expected = sanitize("".join(pieces))
    if expected and not expected.endswith("\n"):
        expected += "\n"
    assert out.getvalue() == expected
    assert not DANGEROUS & set(out.getvalue())


@examples(40)
@given(pieces=PIECES, live=st.booleans())
def test_markdown_on_a_colour_terminal_emits_only_rich_codes(pieces: list[str], live: bool) -> None:
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, force_interactive=live, color_system="truecolor", width=60
    )
    stream = MarkdownStream(console)
    for piece in pieces:
        stream.feed(piece)
    stream.finish()
    left = RICH.sub("", out.getvalue())
    assert not DANGEROUS & set(left), repr(left)


@examples(200)
@given(st.text())
def test_json_report_is_inert_and_exact(content: str) -> None:
    out = io.StringIO()
    write_report(out, ChatFinished(1, "p", "m", content, "stop"))
    line = out.getvalue()
    assert not DANGEROUS & set(line.removesuffix("\n"))
    assert json.loads(line)["content"] == content
