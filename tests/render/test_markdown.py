"""Tests for cortan.render.markdown: streamed answers end up as if rendered at once.

Non-terminal consoles are compared byte for byte with the whole answer printed at once
(`BlockMarkdown`: rich's `Markdown`, with code blocks drawn to copy cleanly).
Terminal consoles are replayed through pyte, a terminal emulator with a scrollback, at
the console's own size, so that a live view that duplicated or lost lines (rich issue
3263) would show in the final scrollback.
"""

from __future__ import annotations

import io
import itertools
import re
import time
from collections.abc import Callable

import pyte
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from cortan.render.elements import BlockMarkdown
from cortan.render.markdown import MarkdownStream

WIDTH, HEIGHT = 80, 24

MIXED = """\
# Title

Some *prose* with `code`, **bold** and a [link](http://example.com).
A second line of the same paragraph.

## Lists

- one
- two
  continued

- three, making the list loose

1. first
2. second

| name | value |
|------|------:|
| a    |     1 |
| b    |     2 |

```python
def f(x):

    return x
```
Text right after the fence.

---

> a quote
> on two lines

~~~~
tilde fence with ``` inside
~~~~

Final paragraph.
"""

NESTED = """\
Steps:

1. Install:

   ```bash
   pip install cortan

   cortan --version
   ```

2. Configure
   - nested item

     with a paragraph
   - another
10. Tenth

    indented code after a blank line

![an image](http://example.com/x.png) then text
Setext heading
==============
***
    indented code

    more indented code
Closing words.
"""

UNCLOSED = 'Here is code:\n\n```rust\nfn main() {\n\n    println!("hi");\n'

SNIPPETS = [
    "# Heading",
    "Plain paragraph text.",
    "A paragraph\nover two lines.",
    "- item\n- item",
    "- loose item",
    "1. one\n2. two",
    "3) three",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "```\ncode\n\nmore code\n```",
    "```py\nx = 1\n",
    "~~~\ntilde\n~~~",
    "---",
    "> quote",
    "    indented code",
    "  - indented item",
    "![img](x.png)",
    "- a\n```\nb\n```\n- c",
    "1. a\n\n   ```\n   x\n\n   ```",
    "- a\n  - b\n\n    ```\n    deep\n\n    ```",
    "> ```\n> q\n>\n> r\n> ```",
    "- a\n\n  b\n\n- c",
    "````\n```\n````",
    "* * *",
    "- a\n  - b\n- c",
    "* a\n* b\n- c\n+ d",
    "- a\n- - -\n- b",
    "+ a\n\n  para\n+ b",
    "  - a\n  - b\n- c",
    "- a\nlazy line\n- b",
    "- [ ] task\n- [x] done",
    "- a\n\n\n- b",
    "",
]


def plain_console() -> Console:
    return Console(file=io.StringIO(), width=WIDTH, color_system=None)


@pytest.fixture
def terminal_console(monkeypatch: pytest.MonkeyPatch) -> Console:
    """An interactive terminal console, whatever TERM the test runner has."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    return Console(
        file=io.StringIO(), width=WIDTH, height=HEIGHT, color_system=None, force_terminal=True
    )


def output(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def rendered_at_once(answer: str) -> str:
    console = plain_console()
    console.print(BlockMarkdown(answer, code_theme="monokai", hyperlinks=False), crop=False)
    return output(console)


def stream(
    console: Console, pieces: list[str], clock: Callable[[], float] = time.monotonic
) -> MarkdownStream:
    md = MarkdownStream(console, clock=clock)
    for piece in pieces:
        md.feed(piece)
    md.finish()
    return md


def streamed(pieces: list[str]) -> str:
    console = plain_console()
    stream(console, pieces)
    return output(console)


def visible_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def scrollback(terminal_output: str) -> list[str]:
    """What a WIDTH x HEIGHT terminal shows, scrollback included, after the output."""
    screen = pyte.HistoryScreen(WIDTH, HEIGHT, history=100_000)
    screen.set_mode(pyte.modes.LNM)  # a tty turns "\n" into "\r\n"
    pyte.Stream(screen).feed(terminal_output)
    history = ["".join(line[x].data for x in range(WIDTH)) for line in screen.history.top]
    return visible_lines("\n".join([*history, *screen.display]))


class FakeClock:
    """A monotonic clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("answer", [MIXED, NESTED, UNCLOSED], ids=["mixed", "nested", "unclosed"])
def test_split_anywhere_renders_as_the_whole(answer: str) -> None:
    expected = rendered_at_once(answer)
    assert streamed([answer]) == expected
    for cut in range(1, len(answer)):
        assert streamed([answer[:cut], answer[cut:]]) == expected, f"cut at {cut}"


TALL_LIST = "Before.\n\n" + "".join(f"- item {i} with *emphasis*\n" for i in range(60)) + "After.\n"


def test_a_bullet_list_is_printed_item_by_item_as_the_whole() -> None:
    """Each item of a bullet list is printed for good as the next starts, no gap between
    them: a list taller than the screen has no tail to redraw (issue 21)."""
    console = plain_console()
    md = MarkdownStream(console)
    md.feed("- one\n- -")
    assert output(console) == ""  # "- -" may yet be a thematic break, "- - -"
    md.feed("two\n- three")  # "- -two" is an item: the one before is done
    assert [line.strip() for line in output(console).splitlines()] == ["", "• one", "• -two"]
    md.finish()
    assert output(console) == rendered_at_once("- one\n- -two\n- three")
    assert streamed(list(TALL_LIST)) == rendered_at_once(TALL_LIST)


def test_one_character_at_a_time() -> None:
    assert streamed(list(MIXED)) == rendered_at_once(MIXED)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(SNIPPETS), max_size=8),
    st.lists(st.sampled_from(["\n", "\n\n", "\n\n\n"]), min_size=8, max_size=8),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_random_answers_split_randomly(
    snippets: list[str], separators: list[str], cuts: list[int]
) -> None:
    answer = "".join(s + sep for s, sep in zip(snippets, separators, strict=False))
    assume(not image_in_a_bullet_list(answer))  # the known difference, tested below
    bounds = sorted({0, len(answer), *(c for c in cuts if c < len(answer))})
    pieces = [answer[a:b] for a, b in itertools.pairwise(bounds)]
    assert streamed(pieces) == rendered_at_once(answer)


def image_in_a_bullet_list(answer: str) -> bool:
    return "![" in answer and bool(re.search(r"(?m)^ {0,3}[-+*][ \t]", answer))


def test_an_image_in_a_bullet_list_is_shown_above_its_own_item() -> None:
    """rich draws every image of a list above the whole list; the items are printed as
    they end, so an image is drawn above the item that holds it (module docstring)."""
    answer = "- a\n- b\n- c ![img](x.png)\n"
    rows = [line.strip() for line in streamed(list(answer)).splitlines()]
    assert rows == ["", "• a", "• b", "🌆 img", "• c"]
    assert [line.strip() for line in rendered_at_once(answer).splitlines()][:2] == ["", "🌆 img"]


def test_blocks_are_committed_as_they_finish() -> None:
    console = plain_console()
    md = MarkdownStream(console)
    md.feed("First paragraph.\n\n")
    assert output(console) == ""  # a list item could still continue it
    md.feed("Second")
    assert "First paragraph." in output(console)
    assert "Second" not in output(console)
    md.feed(" paragraph.\n\n```\ncode\n")
    assert "Second paragraph." in output(console)
    md.feed("```\n")
    assert "code" in output(console)  # a closed top-level fence ends its block at once
    md.finish()
    assert md.committed_blocks == 3


def test_fence_marker_split_across_pieces() -> None:
    pieces = ["``", "`py\nx = 1\n", "``", "`\nafter\n"]
    assert streamed(pieces) == rendered_at_once("".join(pieces))


def test_unclosed_fence_renders_as_code_at_finish() -> None:
    out = streamed(["```python\n", "print('hi')\n", "\nx = 1"])
    assert out == rendered_at_once("```python\nprint('hi')\n\nx = 1\n```\n")


def test_crlf_split_across_pieces_is_one_newline() -> None:
    assert streamed(["one\r", "\ntwo\r\n"]) == rendered_at_once("one\ntwo\n")
    assert "␍" in streamed(["over\r", "written"])
    assert "␍" in streamed(["ends with\r"])


ATTACKS = [
    "Start \x1b[2J\x1b[H cleared? ",
    "\x1b]0;new title\x07",
    "\x1b]52;c;cm0gLXJmIH4=\x07 clipboard ",
    "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ ",
    "\x9b31m 8-bit CSI \u202eevil\u202c ",
    "[a link](http://evil.example/ok)\n\n```\n\x1b[31mred code\n```\n",
]


def assert_no_model_sequences(out: str) -> None:
    for sequence in ("\x1b[2J", "\x1b]", "\x1b[31m", "\x9b", "\u202e", "\x07"):
        assert sequence not in out
    assert "␛]52;" in out  # shown, not obeyed


def test_escape_sequences_never_reach_a_plain_console() -> None:
    out = streamed(ATTACKS)
    assert "\x1b" not in out
    assert "(http://evil.example/ok)" in out  # a link shows its target
    assert_no_model_sequences(out)


def test_escape_sequences_never_reach_a_terminal(terminal_console: Console) -> None:
    stream(terminal_console, ATTACKS, clock=FakeClock(0.1))
    assert_no_model_sequences(output(terminal_console))


def test_abort_keeps_the_partial_answer() -> None:
    console = plain_console()
    md = MarkdownStream(console)
    for piece in ["Para one.\n\n", "Para two is **cut", " off"]:
        md.feed(piece)
    md.abort("interrupted \x1b[2J")
    out = output(console)
    assert "Para one." in out
    assert "Para two is **cut off" in out
    assert "interrupted ␛[2J" in out
    md.abort()  # a second call does nothing
    assert output(console) == out


def test_abort_on_a_terminal_keeps_the_partial_answer(terminal_console: Console) -> None:
    md = MarkdownStream(terminal_console, clock=FakeClock(0.1))
    md.feed("Para one.\n\n```python\nx = 1\n")
    md.abort("interrupted")
    lines = scrollback(output(terminal_console))
    assert lines[0] == "Para one."
    assert any("x = 1" in line for line in lines)
    assert lines[-1] == "interrupted"


def test_feed_after_finish_is_an_error() -> None:
    md = stream(plain_console(), ["done"])
    with pytest.raises(RuntimeError):
        md.feed("more")


@pytest.mark.parametrize("answer", [MIXED, NESTED], ids=["mixed", "nested"])
def test_terminal_scrollback_matches_whole_render(terminal_console: Console, answer: str) -> None:
    pieces = [answer[i : i + 3] for i in range(0, len(answer), 3)]
    stream(terminal_console, pieces, clock=FakeClock(0.02))
    assert scrollback(output(terminal_console)) == visible_lines(rendered_at_once(answer))


@pytest.mark.parametrize(
    ("shown", "rest", "times"),
    [
        ("Sure, here", " is the answer:\n\n- one\n- two\n\n```python\nx = 1\n```\n", 1),
        ("Plain words", " all the way down, on one line.", 1),
        ("Long", " words " * 30 + "that wrap.\n\nA second paragraph.", 1),
        ("Heading soon", "\n===\n\nText.", 2),  # it becomes a heading: drawn again, centred
    ],
)
def test_a_stream_from_words_already_shown_ends_as_the_whole_render(
    terminal_console: Console, shown: str, rest: str, times: int
) -> None:
    """The first words were written plain before rich was loaded (render/lead.py): the
    stream starts from them, writes them again only if rendering changes them, and
    never leaves them stale."""
    terminal_console.file.write(shown)
    md = MarkdownStream(terminal_console, clock=FakeClock(0.02), shown=shown)
    md.feed(shown + rest[:5])
    for i in range(5, len(rest), 4):
        md.feed(rest[i : i + 4])
    md.finish()
    out = output(terminal_console)
    assert scrollback(out) == visible_lines(rendered_at_once(shown + rest))
    assert out.count(shown) == times


def test_words_shown_before_a_console_that_is_not_live_are_printed_over() -> None:
    console = plain_console()
    console.file.write("Plain")
    md = MarkdownStream(console, shown="Plain")
    md.feed("Plain words.\n\nMore.")
    md.finish()
    assert scrollback(output(console)) == visible_lines(rendered_at_once("Plain words.\n\nMore."))


TALL_CODE = "```python\n" + "".join(f"line_{i:03} = {i}\n" for i in range(200)) + "```\n\nAfter.\n"


def test_tall_code_block_is_printed_once_on_a_plain_console() -> None:
    pieces = [TALL_CODE[i : i + 4] for i in range(0, len(TALL_CODE), 4)]
    out = streamed(pieces)
    assert out == rendered_at_once(TALL_CODE)
    for i in range(200):
        assert out.count(f"line_{i:03} ") == 1


def test_tall_code_block_is_printed_once_on_a_terminal(terminal_console: Console) -> None:
    pieces = [TALL_CODE[i : i + 4] for i in range(0, len(TALL_CODE), 4)]
    md = stream(terminal_console, pieces, clock=FakeClock(0.01))
    lines = scrollback(output(terminal_console))
    assert lines == visible_lines(rendered_at_once(TALL_CODE))
    assert md.redraws > 50  # the live view was used while the block was open


def test_live_view_shows_the_open_block_after_a_commit(terminal_console: Console) -> None:
    md = MarkdownStream(terminal_console, clock=FakeClock(0.0))
    md.feed("First block.\n\nA tall paragraph " + "and *marked* again " * 150)
    screen = pyte.Screen(WIDTH, HEIGHT)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(output(terminal_console))
    shown = [line.rstrip() for line in screen.display]
    assert shown[0] == "First block."
    assert "marked again" in shown[-2]  # cut to fit, still rendered as markdown
    assert "*" not in "".join(shown)
    md.finish()


def test_a_table_arriving_taller_than_the_screen_is_printed_at_once(
    terminal_console: Console,
) -> None:
    """Its rows are printed for good as soon as it is found tall (tests/render/
    test_tall_table.py), and it is still drawn as a table."""
    md = MarkdownStream(terminal_console, clock=FakeClock(0.0))
    md.feed("First block.\n\n| a | b |\n|---|---|\n" + "| row | 1 |\n" * 40)
    assert md.committed_blocks == 2
    screen = pyte.Screen(WIDTH, HEIGHT)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(output(terminal_console))
    shown = [line.split() for line in screen.display if line.strip()]
    assert shown[-1] == ["row", "1"]
    assert "|" not in str(shown)
    md.finish()


def test_redraws_are_throttled_in_a_tight_loop(terminal_console: Console) -> None:
    md = MarkdownStream(terminal_console)
    start = time.monotonic()
    for i in range(10_000):
        md.feed(f"w{i} " if i % 50 else "\n")
    elapsed = time.monotonic() - start
    md.finish()
    assert md.redraws <= elapsed * 20 + md.committed_blocks + 2


def test_redraws_follow_the_clock(terminal_console: Console) -> None:
    # 10,000 pieces 1 ms apart: 10 s at 20 frames per second.
    md = stream(terminal_console, ["word "] * 10_000, clock=FakeClock(0.001))
    assert 150 <= md.redraws <= 201
    assert md.committed_blocks == 1


def test_refresh_shows_text_that_arrived_between_frames(terminal_console: Console) -> None:
    clock = FakeClock(0.0)
    md = MarkdownStream(terminal_console, clock=clock)
    md.feed("first")
    md.feed(" second")  # no time has passed: not drawn yet
    assert md.redraws == 1
    md.refresh()
    assert md.redraws == 2
    md.refresh()  # nothing new
    assert md.redraws == 2
    md.finish()


def test_no_live_view_on_a_plain_console() -> None:
    md = stream(plain_console(), ["# Title\n\n", "text " * 1000], clock=FakeClock(1.0))
    assert md.redraws == 0
    assert md.committed_blocks == 2


def test_a_fence_language_still_arriving_is_not_looked_up(
    terminal_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live view never asks pygments for "p" or "pyth": a name it does not know makes
    it scan every installed package for plugins (CPU and a megabyte of imports)."""
    import rich.syntax

    asked: list[str] = []
    lookup = rich.syntax.get_lexer_by_name  # type: ignore[attr-defined]  # pygments', imported

    def recording(name: str, **options: object) -> object:
        asked.append(name)
        return lookup(name, **options)

    monkeypatch.setattr(rich.syntax, "get_lexer_by_name", recording)
    stream(
        terminal_console,
        ["Code:\n\n", "```", "p", "yth", "on\n", "x = 1\n", "```\n"],
        FakeClock(1.0),
    )
    assert set(asked) <= {"python", "text"}
    assert "python" in asked
    assert any("x = 1" in line for line in scrollback(output(terminal_console)))


class Terminal:
    """A console on a pyte screen with a scrollback, fed as the console writes.

    pyte cuts lines when it is made narrower, as xterm does; tmux and the other
    terminals that re-wrap them are driven in tests/e2e/test_redraw.py.
    """

    def __init__(self, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
        self.console = Console(
            file=io.StringIO(), width=width, height=HEIGHT, color_system=None, force_terminal=True
        )
        self.screen = pyte.HistoryScreen(width, HEIGHT, history=10_000)
        self.screen.set_mode(pyte.modes.LNM)
        self.stream = pyte.Stream(self.screen)
        self.read = 0

    def pump(self) -> None:
        text = output(self.console)[self.read :]
        self.read += len(text)
        self.stream.feed(text)

    def resize(self, width: int) -> None:
        self.pump()
        self.console.width = width  # what rich reads after SIGWINCH
        self.screen.resize(HEIGHT, width)

    def text(self) -> str:
        """Scrollback and screen, spaces and line ends left out."""
        self.pump()
        columns = self.screen.columns
        history = [
            "".join(line[x].data for x in range(columns)) for line in self.screen.history.top
        ]
        return "".join("".join([*history, *self.screen.display]).split())


CODE_LINES = [f"total += {i}  # marker {i:02}" for i in range(12)]


@pytest.mark.parametrize("narrow_at", [3, 7])
def test_narrowing_mid_code_block_erases_nothing_and_draws_nothing_twice(
    monkeypatch: pytest.MonkeyPatch, narrow_at: int
) -> None:
    """Made narrower than the open block's lines, a terminal has re-wrapped or cut them:
    the block stays as it stands and goes on below, and nothing above it is erased."""
    term = Terminal(60, monkeypatch)
    md = MarkdownStream(term.console, clock=FakeClock(1.0))
    md.feed("Before the code.\n\n```python\n")
    for i, code in enumerate(CODE_LINES):
        if i == narrow_at:
            term.resize(30)
        md.feed(code[:15])
        md.feed(code[15:] + "\n")
    md.feed("```\n\nAfter the code.\n")
    md.finish()
    shown = term.text()
    assert shown.count("Beforethecode.") == 1
    assert shown.count("Afterthecode.") == 1
    for i in range(12):
        assert shown.count(f"#marker{i:02}") == 1, (i, shown)
    assert shown.index("marker11") < shown.index("Afterthecode.")


def test_a_block_started_after_a_narrowing_is_rendered_at_the_new_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    term = Terminal(60, monkeypatch)
    md = MarkdownStream(term.console, clock=FakeClock(1.0))
    md.feed("A first paragraph of a few words that fill most of the line.")
    term.resize(30)
    md.feed("\n\nThe next paragraph, which is longer than thirty columns.\n")
    md.finish()
    term.pump()
    rows = [row.rstrip() for row in term.screen.display if row.strip()]
    assert rows[-2:] == ["The next paragraph, which is", "longer than thirty columns."]


def test_a_tall_code_block_scrolls_instead_of_redrawing_its_last_screenful(
    terminal_console: Console,
) -> None:
    """Its complete lines are kept for good as they leave the screen: each is written
    about twice (plain as it arrives, then highlighted once complete), not once per line
    that follows it (issue 21)."""
    pieces = [TALL_CODE[i : i + 4] for i in range(0, len(TALL_CODE), 4)]
    stream(terminal_console, pieces, clock=FakeClock(0.01))
    once = len(rendered_at_once(TALL_CODE))
    assert len(output(terminal_console)) < 2.5 * once


@pytest.mark.parametrize("narrow_at", [30, 150])
def test_narrowing_mid_tall_code_block_erases_nothing_and_draws_nothing_twice(
    monkeypatch: pytest.MonkeyPatch, narrow_at: int
) -> None:
    term = Terminal(60, monkeypatch)
    md = MarkdownStream(term.console, clock=FakeClock(1.0))
    md.feed("Before the code.\n\n```python\n")
    for i in range(200):
        if i == narrow_at:
            term.resize(30)
        md.feed(f"total += {i}  # marker {i:03}\n")
    md.feed("```\n\nAfter the code.\n")
    md.finish()
    shown = term.text()
    assert shown.count("Beforethecode.") == 1
    assert [int(n) for n in re.findall(r"#marker(\d{3})", shown)] == list(range(200))
    assert shown.count("Afterthecode.") == 1


COMMAND = (
    "curl -sS http://localhost:11434/api/tags | jq -r '.models[].name' | sort -u | "
    "xargs -n1 -I{} sh -c 'echo pulling {}; ollama pull {} >/dev/null' && echo done"
)
WITH_COMMAND = f"Run this:\n\n```bash\n{COMMAND}\n```\n\nThen check.\n"
SGR_OR_FRAME = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?2026[hl]")


def colour_terminal(monkeypatch: pytest.MonkeyPatch) -> Console:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    return Console(
        file=io.StringIO(), width=WIDTH, height=HEIGHT, color_system="truecolor",
        force_terminal=True,
    )  # fmt: skip


def test_a_code_block_on_a_terminal_copies_as_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21: copied off the screen, a command came back with a leading space,
    spaces to the window's width and a newline in the middle. A long command is now
    written in one run for the terminal to soft-wrap, with nothing around it."""
    assert len(COMMAND) > 2 * WIDTH - 20
    console = colour_terminal(monkeypatch)
    pieces = [WITH_COMMAND[i : i + 24] for i in range(0, len(WITH_COMMAND), 24)]
    stream(console, pieces, clock=FakeClock(0.1))
    written = output(console)
    assert "\x1b[48;" not in written  # no background painted
    text = SGR_OR_FRAME.sub("", written)
    # In one run from the first column, with no newline or cursor movement inside it
    # (plain as it arrives, then highlighted whole), and no space written after it.
    assert re.search(f"(\n|\x1b\\[1G){re.escape(COMMAND)}(\n|\x1b)", text)
    screen = pyte.Screen(WIDTH, HEIGHT)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(written)
    rows = [row.rstrip() for row in screen.display]
    first = rows.index(COMMAND[:WIDTH])
    assert rows[first - 1 : first + 4] == [
        "bash",
        COMMAND[:WIDTH],
        COMMAND[WIDTH:],
        "",
        "Then check.",
    ]


def test_a_code_block_printed_whole_keeps_its_lines_whole() -> None:
    """Not live (`--no-stream`, a console that is no terminal): the same, printed once."""
    lines = streamed([WITH_COMMAND]).split("\n")
    assert lines[lines.index(COMMAND) - 1 : lines.index(COMMAND) + 2] == ["bash", COMMAND, ""]


def test_a_code_block_is_highlighted_without_a_background(monkeypatch: pytest.MonkeyPatch) -> None:
    console = colour_terminal(monkeypatch)
    stream(console, ["```python\nimport os\n\n\tprint(os.sep)  # trailing   \n```\n"])
    written = output(console)
    assert "\x1b[48;" not in written
    assert re.search(r"\x1b\[[0-9;]*38;2;[0-9;]+mimport", written)  # a keyword, coloured
    assert " \n" not in SGR_OR_FRAME.sub("", written)  # nothing after a line's last character


LONG_CODE = "Before.\n\n```python\n" + "".join(
    f"marker_{i:02} = compute({'x' * (i % 3 * 50)}, {i})\n" for i in range(60)
)


@pytest.mark.parametrize("narrow_at", [None, 20, 50])
def test_a_tall_code_block_of_long_lines_shows_each_line_once(
    monkeypatch: pytest.MonkeyPatch, narrow_at: int | None
) -> None:
    """Lines of one, two and three rows: the kept rows and the live ones are counted in
    rows, so nothing is drawn twice or left out as the block scrolls, or when narrowed."""
    term = Terminal(WIDTH, monkeypatch)
    md = MarkdownStream(term.console, clock=FakeClock(1.0))
    answer = LONG_CODE + "```\n\nAfter.\n"
    for start in range(0, len(answer), 7):
        if narrow_at is not None and answer[:start].count("\n") == narrow_at + 3:
            term.resize(50)
        md.feed(answer[start : start + 7])
    md.finish()
    shown = term.text()
    assert [int(n) for n in re.findall(r"marker_(\d\d)", shown)] == list(range(60))
    written = SGR_OR_FRAME.sub("", output(term.console))
    assert f"marker_05 = compute({'x' * 100}, 5)\n" in written  # three rows, in one run
    assert shown.count("Before.") == shown.count("After.") == 1
    if narrow_at is None:
        assert shown == "".join("".join(visible_lines(rendered_at_once(answer))).split())
