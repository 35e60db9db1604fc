"""The real `cortan ask` on a pseudo-terminal: what a slowly streamed answer costs the
terminal in bytes, and what a resize in the middle of it leaves on the screen (issue 21).

The baseline is the same answer printed once (``--no-stream``) on the same terminal: a
streamed answer may cost at most three times that. The screen is modelled with pyte,
scrollback included.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.conftest import CortanRunner, cortan_command
from tests.servers import FakeOllama, Reply

pytestmark = pytest.mark.e2e

ROWS, COLS = 30, 100
SLOW = 0.04  # seconds between pieces: most pieces fall due for a redraw (20 a second)


def make_answer() -> str:
    """About 6 KB of markdown whose every line can be told apart: a duplicate would show."""
    parts = ["# An answer drawn slowly"]
    n = 0
    while sum(map(len, parts)) < 6_000:
        n += 1
        words = " ".join(f"word{n}x{i}" for i in range(40))
        code = "\n".join(f"    total += {n} * {i}  # line {n}.{i}" for i in range(12))
        parts += [
            f"Paragraph {n} says {words} and **ends** with `code{n}()`.",
            f"- item {n}a is short\n- item {n}b is short too",
            f"```python\ndef f{n}(total):\n{code}\n    return total\n```",
        ]
    return "\n\n".join(parts) + "\n"


ANSWER = make_answer()
PIECES = [ANSWER[i : i + 24] for i in range(0, len(ANSWER), 24)]


class Pty:
    """`cortan ask` on a pty, every byte it wrote kept, the screen modelled by pyte."""

    def __init__(
        self, args: list[str], env: dict[str, str], cols: int = COLS, rows: int = ROWS
    ) -> None:
        command = cortan_command()
        self.child = pexpect.spawn(
            command[0], [*command[1:], *args], env=env, dimensions=(rows, cols), encoding=None
        )
        self.screen = pyte.HistoryScreen(cols, rows, history=10_000)
        self.screen.set_mode(pyte.modes.LNM)
        self.stream = pyte.ByteStream(self.screen)
        self.written = bytearray()

    def pump(self, until: float) -> bool:
        """Read until `until` (monotonic); whether the child ended."""
        while time.monotonic() < until:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.05)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                return True
            self.written += data
            self.stream.feed(data)
        return False

    def finish(self, timeout: float = 40) -> None:
        assert self.pump(time.monotonic() + timeout), "cortan did not end"
        self.child.close()
        assert self.child.exitstatus == 0

    def resize(self, cols: int) -> None:
        self.screen.resize(self.screen.lines, cols)
        self.child.setwinsize(self.screen.lines, cols)  # TIOCSWINSZ: the kernel sends SIGWINCH

    def lines(self) -> list[str]:
        """Scrollback and screen, as text, blank lines dropped."""
        history = [
            "".join(line[x].data for x in range(self.screen.columns))
            for line in self.screen.history.top
        ]
        rows = [*history, *self.screen.display]
        return [row.rstrip() for row in rows if row.strip()]


@pytest.fixture
def pty_env(ollama_env: FakeOllama) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)  # rich would take the width from it and never see a resize
    env.pop("LINES", None)
    env.update(TERM="xterm-256color")
    return env


def run(env: dict[str, str], *args: str, cols: int = COLS, rows: int = ROWS) -> Pty:
    pty = Pty(["ask", *args, "explain"], env, cols, rows)
    pty.finish()
    return pty


def test_a_slowly_streamed_answer_costs_at_most_three_times_printing_it_once(
    pty_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=[ANSWER]))
    once = run(pty_env, "--no-stream")
    ollama_env.queue(Reply(pieces=PIECES, delay=SLOW))
    streamed = run(pty_env)
    ratio = len(streamed.written) / len(once.written)
    assert ratio <= 3, f"{len(streamed.written)} bytes streamed, {len(once.written)} at once"
    assert streamed.lines() == once.lines()
    assert streamed.written.count(b"\x1b[?2026h") == streamed.written.count(b"\x1b[?2026l") > 100


def test_first_words_written_early_end_as_the_answer_printed_once(
    pty_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """A fast server's first plain words may go out before rich is loaded (render/lead.py):
    they are on the terminal once, and the screen ends as ``--no-stream`` leaves it."""
    pieces = ["Sure, here", " is a list", ":\n\n", "- **one**\n", "- `two`\n\nDone."]
    ollama_env.queue(Reply(pieces=["".join(pieces)]))
    once = run(pty_env, "--no-stream")
    ollama_env.queue(Reply(pieces=pieces))
    streamed = run(pty_env)
    assert streamed.lines() == once.lines()
    assert streamed.written.count(b"Sure, here is a list") == 1
    assert b"*" not in streamed.written


def test_a_resize_mid_answer_leaves_no_stale_or_duplicate_lines(
    pty_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=PIECES, delay=SLOW))
    pty = Pty(["ask", "explain"], pty_env)
    assert not pty.pump(time.monotonic() + 2.5), "the answer ended before the resize"
    pty.resize(COLS + 20)  # pyte does not re-wrap lines, as a terminal that widens need not
    assert not pty.pump(time.monotonic() + 1.5)
    pty.resize(COLS + 40)
    pty.finish()
    lines = pty.lines()
    for n in range(1, ANSWER.count("Paragraph ") + 1):
        assert sum(f"# line {n}.11" in line for line in lines) == 1, n
        assert sum(f"item {n}a is short" in line for line in lines) == 1, n
        assert sum(line.startswith(f"Paragraph {n} says") for line in lines) == 1, n


class Tmux:
    """`cortan ask` in a tmux of its own: tmux re-wraps lines when it is narrowed, as
    VTE, kitty, iTerm2, Windows Terminal and foot do, keeping the bottom row where it is."""

    def __init__(self, env: dict[str, str], tmp_path: Path, cols: int = COLS) -> None:
        self.tmux = ["tmux", "-L", f"cortan-test-{os.getpid()}", "-f", "/dev/null"]
        self.done = tmp_path / "done"
        command = " ".join(shlex.quote(part) for part in [*cortan_command(), "ask", "explain"])
        script = f"{command}; touch {shlex.quote(str(self.done))}; sleep 60"
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-x", str(cols), "-y", str(ROWS), script],
            env=env,
            check=True,
        )

    def capture(self, *options: str) -> str:
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", *options],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Until `text` is on the screen: a checkpoint, not a sleep."""
        deadline = time.monotonic() + timeout
        while text not in self.capture():
            assert time.monotonic() < deadline, f"{text!r} never showed"
            time.sleep(0.02)

    def resize(self, cols: int) -> None:
        subprocess.run([*self.tmux, "resize-window", "-x", str(cols)], check=True)

    def finish(self, timeout: float = 40) -> str:
        """Wait for cortan to end; the scrollback and the screen, re-wrapped lines joined."""
        deadline = time.monotonic() + timeout
        while not self.done.exists():
            assert time.monotonic() < deadline, "cortan did not end"
            time.sleep(0.1)
        return self.capture("-J", "-S", "-")

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], check=False)


TOKENS = re.compile(r"#line\d+\.\d+|Paragraph\d+says|item\d+[ab]is|deff\d+\(|word\d+x\d+")


def assert_answer_once(shown: str) -> None:
    """Every word and code line of the answer shown once, in order.

    Spaces and line ends are left out of the comparison: a narrowing may leave the line
    that was arriving cut where it stood, and the block goes on from there on the next
    row (render/markdown.py); the text must still read once, whole.
    """
    assert TOKENS.findall(re.sub(r"\s", "", shown)) == TOKENS.findall(re.sub(r"\s", "", ANSWER))


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux, a terminal that re-wraps")
@pytest.mark.parametrize(
    ("checkpoint", "widths"),
    [
        ("# line 2.9", [45]),  # mid code block: each padded line becomes three rows
        ("word3x25", [40]),  # mid paragraph
        ("# line 2.4", [70, 50]),  # twice in one block
        ("# line 2.4", [60, 100]),  # narrowed, then widened back in the same block
        ("# line 2.4", [100 + 30, 60]),  # widened, then narrowed below where it started
    ],
)
def test_narrowing_in_tmux_leaves_every_line_once(
    pty_env: dict[str, str],
    ollama_env: FakeOllama,
    tmp_path: Path,
    checkpoint: str,
    widths: list[int],
) -> None:
    """tmux narrowed mid-block: the rows it re-wraps above the top of its screen are out
    of any cursor's reach, so the block must go on below them, not be drawn again."""
    ollama_env.queue(Reply(pieces=PIECES, delay=SLOW))
    tmux = Tmux(pty_env, tmp_path)
    try:
        tmux.wait_for(checkpoint)
        for width in widths:
            tmux.resize(width)
            time.sleep(0.3)  # a few redraws at this width before the next
        shown = tmux.finish()
    finally:
        tmux.close()
    assert_answer_once(shown)


TALL_CODE = "Before.\n\n```python\n" + "".join(f"x = {i}  # tall {i:02}\n" for i in range(60))
TALL_LIST = "Before.\n\n" + "".join(f"- item # tall {i:02} is here\n" for i in range(60))
TALL_NUMBERED = "Before.\n\n" + "".join(f"{i + 1}. item # tall {i:02} is here\n" for i in range(60))
TALL_TABLE = "Before.\n\n| row | what it holds |\n|---|---|\n" + "".join(
    f"| {i} | # tall {i:02} is a cell wide enough for a narrower terminal to re-wrap |\n"
    for i in range(60)
)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux, a terminal that re-wraps")
@pytest.mark.parametrize(
    ("answer", "checkpoint"),
    [
        pytest.param(TALL_CODE + "```\n", "# tall 45", id="code"),
        pytest.param(TALL_LIST, "# tall 45", id="list"),
        pytest.param(TALL_NUMBERED, "# tall 45", id="numbered"),
        pytest.param(TALL_TABLE + "\nAfter.\n", "# tall 45", id="table"),
        # just taller than the screen: its tail was live until the next row ended
        pytest.param(TALL_TABLE + "\nAfter.\n", "# tall 24", id="table-just-tall"),
    ],
)
def test_narrowing_in_tmux_mid_block_taller_than_the_screen(
    pty_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path, answer: str, checkpoint: str
) -> None:
    """A code block taller than the screen lets its top rows go for good as they scroll
    out (their lines do not change once complete), and a list prints each item as the
    next starts (a numbered one once it is taller than the screen), and a table taller
    than the screen each row as it ends: narrowed, each goes on below what is printed."""
    pieces = [answer[i : i + 24] for i in range(0, len(answer), 24)]
    ollama_env.queue(Reply(pieces=pieces, delay=SLOW))
    tmux = Tmux(pty_env, tmp_path)
    try:
        tmux.wait_for(checkpoint)
        tmux.resize(45)
        shown = tmux.finish()
    finally:
        tmux.close()
    assert re.findall(r"#tall(\d\d)", re.sub(r"\s", "", shown)) == [f"{i:02}" for i in range(60)]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux, a terminal that re-wraps")
def test_narrowing_in_tmux_mid_numbered_list_that_then_widens(
    pty_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """Narrowed at its sixth item, a list of fourteen was printed twice: at the end the
    whole list, its numbers widened by the tenth, no longer matched the rows kept."""
    answer = "Before.\n\n" + "".join(f"{i + 1}. item # n {i:02} is here\n" for i in range(14))
    pieces = [answer[i : i + 12] for i in range(0, len(answer), 12)]
    ollama_env.queue(Reply(pieces=pieces, delay=SLOW))
    tmux = Tmux(pty_env, tmp_path)
    try:
        tmux.wait_for("# n 05")
        tmux.resize(45)
        shown = tmux.finish()
    finally:
        tmux.close()
    assert re.findall(r"#n(\d\d)", re.sub(r"\s", "", shown)) == [f"{i:02}" for i in range(14)]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux, a terminal that re-wraps")
def test_resizes_in_tmux_leave_every_line_once(
    pty_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """A real terminal, widened several times mid-answer: every line ends up once.

    Narrowing is left out: tmux re-wraps the lines above the cursor by pushing the top
    ones into its scrollback, out of any cursor's reach, so a narrowing during an
    answer leaves the rows of the open block that went up there (docs/repl.md).
    """
    ollama_env.queue(Reply(pieces=PIECES, delay=SLOW))
    tmux = ["tmux", "-L", f"cortan-test-{os.getpid()}", "-f", "/dev/null"]
    done = tmp_path / "done"
    command = " ".join(shlex.quote(part) for part in [*cortan_command(), "ask", "explain"])
    script = f"{command}; touch {shlex.quote(str(done))}; sleep 60"
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", str(COLS), "-y", str(ROWS), script],
        env=pty_env,
        check=True,
    )
    try:
        deadline = time.monotonic() + 40
        for width in (104, 108, 113, 118, 124, 130):
            time.sleep(0.9)  # the answer goes on meanwhile: a resize lands mid-block
            subprocess.run([*tmux, "resize-window", "-x", str(width)], check=True)
        while not done.exists():
            assert time.monotonic() < deadline, "cortan did not end"
            time.sleep(0.1)
        shown = subprocess.run(
            [*tmux, "capture-pane", "-p", "-J", "-S", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    for n in range(1, ANSWER.count("Paragraph ") + 1):
        for i in range(12):
            found = re.findall(rf"# line {n}\.{i}[ \t]*$", shown, re.MULTILINE)
            assert len(found) == 1, (n, i, shown)
        assert shown.count(f"item {n}a is short") == 1, (n, shown)
        assert shown.count(f"Paragraph {n} says") == 1, (n, shown)


def long_line(size: int) -> str:
    """A Python line of about `size` characters whose every item can be told apart."""
    items = [f"'k{n:05}': {n % 97}, " for n in range(size // 14 + 1)]
    return "data = {" + "".join(items) + "}"


@pytest.mark.parametrize(
    ("size", "cols", "rows", "delay"), [(8_000, 80, 24, 0.002), (2_400, 80, 30, 0.02)]
)
def test_a_code_line_taller_than_the_screen_costs_its_size_not_the_screens(
    pty_env: dict[str, str],
    ollama_env: FakeOllama,
    size: int,
    cols: int,
    rows: int,
    delay: float,
) -> None:
    """One code line streamed in pieces of 4 characters: its last screenful was redrawn
    at every piece once it was taller than the screen. Its full rows are now kept as
    they leave it (render/markdown.py): at most 3x printing the answer once, and the
    line reads once, whole and in order, in the scrollback and on the screen."""
    line = long_line(size)
    answer = f"Here:\n\n```python\n{line}\nprint(data)\n```\n\nDone.\n"
    ollama_env.queue(Reply(pieces=[answer]))
    once = run(pty_env, "--no-stream", cols=cols, rows=rows)
    pieces = [answer[i : i + 4] for i in range(0, len(answer), 4)]
    ollama_env.queue(Reply(pieces=pieces, delay=delay))  # a redraw every few pieces
    streamed = run(pty_env, cols=cols, rows=rows)
    ratio = len(streamed.written) / len(once.written)
    assert ratio <= 3, f"{len(streamed.written)} bytes streamed, {len(once.written)} at once"
    shown = "".join(streamed.lines())
    assert re.findall(r"'k(\d{5})'", shown) == [f"{n:05}" for n in range(line.count("'k"))]
    assert streamed.lines() == once.lines()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux, a terminal that re-wraps")
@pytest.mark.parametrize("width", [45, 120])
def test_resizing_in_tmux_mid_code_line_taller_than_the_screen(
    pty_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path, width: int
) -> None:
    """The line's top rows are kept as they leave the screen: resized, tmux re-wraps
    them with the rest still live, so the rest goes on below what stands, never drawn
    twice; the line reads once, in order (a resize cuts it in two, as docs/repl.md says)."""
    line = long_line(6_000)
    answer = f"Here:\n\n```python\n{line}\nprint(data)\n```\n\nDone.\n"
    pieces = [answer[i : i + 8] for i in range(0, len(answer), 8)]
    ollama_env.queue(Reply(pieces=pieces, delay=0.004))
    tmux = Tmux(pty_env, tmp_path, cols=80)
    try:
        tmux.wait_for("'k00250'")
        tmux.resize(width)
        shown = tmux.finish()
    finally:
        tmux.close()
    keys = re.findall(r"'k(\d{5})'", re.sub(r"\s", "", shown))
    assert keys == [f"{n:05}" for n in range(line.count("'k"))]
    assert shown.count("print(data)") == shown.count("Done.") == 1


COMMAND = (
    "curl -sS http://localhost:11434/api/tags | jq -r '.models[].name' | sort -u | "
    "xargs -n1 -I{} sh -c 'echo pulling {}; ollama pull {} >/dev/null' && echo done"
)
WITH_COMMAND = f"Run this:\n\n```bash\n{COMMAND}\n```\n\nThen check.\n"
SGR_OR_FRAME = re.compile(rb"\x1b\[[0-9;]*m|\x1b\[\?2026[hl]")


def test_a_long_command_in_a_code_block_is_written_whole_on_a_pty(
    pty_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """Issue 21: a code block was drawn with a background, a cell of padding on each side,
    each line filled with spaces and a long one broken with a newline: copied with the
    mouse, a command came back with a leading space, trailing spaces, and in two lines.
    Now the command is written in one run from the first column, for the terminal to
    soft-wrap (pyte does not track soft wraps: the bytes tell), with nothing around it."""
    assert len(COMMAND) > 150
    pieces = [WITH_COMMAND[i : i + 24] for i in range(0, len(WITH_COMMAND), 24)]
    ollama_env.queue(Reply(pieces=pieces, delay=SLOW))
    pty = run(pty_env, cols=80)
    written = SGR_OR_FRAME.sub(b"", bytes(pty.written))
    assert re.search(rb"(\r?\n|\x1b\[1G)" + re.escape(COMMAND.encode()) + rb"(\r?\n|\x1b)", written)
    assert b"\x1b[48;" not in pty.written  # no background painted
    rows = [row.rstrip() for row in pty.screen.display]
    first = rows.index(COMMAND[:80])
    assert rows[first - 1 : first + 4] == ["bash", COMMAND[:80], COMMAND[80:], "", "Then check."]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux, a terminal that re-wraps")
def test_a_long_command_in_a_code_block_copies_as_one_line_in_tmux(
    pty_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """tmux knows which rows it soft-wrapped (what its copy mode and a mouse copy join):
    the command is one line, with no space before or after it, and stays one when the
    window is narrowed and widened mid-answer."""
    answer = WITH_COMMAND + "\n" + make_answer()[:1500]
    pieces = [answer[i : i + 24] for i in range(0, len(answer), 24)]
    ollama_env.queue(Reply(pieces=pieces, delay=SLOW))
    tmux = Tmux(pty_env, tmp_path, cols=80)
    try:
        tmux.wait_for("Then check.")
        tmux.resize(60)
        time.sleep(0.3)
        tmux.resize(90)
        shown = tmux.finish()
    finally:
        tmux.close()
    assert shown.split("\n").count(COMMAND) == 1, shown


def test_a_code_block_piped_is_the_markdown_as_sent(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=[WITH_COMMAND]))
    result = cortan.run("ask", "explain")
    assert result.code == 0, result.stderr
    assert result.stdout == WITH_COMMAND
