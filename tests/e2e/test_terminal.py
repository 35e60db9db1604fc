"""The real `cortan` in a pseudo-terminal: type, read the screen, interrupt, leave.

The screen is modelled with pyte so assertions are on what a person would see,
not on escape codes. PROMPT_TOOLKIT_NO_CPR avoids waiting for a cursor-position
answer that pexpect never sends.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.conftest import cortan_command
from tests.servers import FakeOllama, Reply

pytestmark = pytest.mark.e2e

ROWS, COLS = 30, 100


class Terminal:
    """A child process on a pty, with the screen it has drawn."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = cortan_command()
        self.child = pexpect.spawn(
            command[0], [*command[1:], *args], env=env, dimensions=(ROWS, COLS), encoding=None
        )
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def pump(self) -> None:
        try:
            while True:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.05))
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def wait(self, predicate: Callable[[str], bool], timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if predicate(self.text()):
                return self.text()
        raise AssertionError(f"screen never matched; it shows:\n{self.text()}")

    def type(self, text: str) -> None:
        self.child.send(text.encode())

    def leave(self) -> None:
        """Ctrl-D at the prompt, and the shell gone."""
        self.type("\x04")
        self.child.expect(pexpect.EOF, timeout=10)


@pytest.fixture
def terminal_env(ollama_env: FakeOllama) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color", COLUMNS=str(COLS))
    return env


@pytest.fixture
def term(terminal_env: dict[str, str]) -> Iterator[Terminal]:
    terminal = Terminal([], terminal_env)
    yield terminal
    terminal.child.close(force=True)


def prompt_ready(screen: str) -> bool:
    return screen.rstrip().splitlines()[-1:] == ["›"] if screen.strip() else False


def test_ask_render_interrupt_and_leave(term: Terminal, ollama_env: FakeOllama) -> None:
    term.wait(lambda s: "›" in s)
    ollama_env.queue(
        Reply(pieces=["# Title\n\n", "Some **bold** text.\n\n", "- one\n- two\n"]),
        Reply(pieces=["first part ", "and more"], fault="never_end", fault_after=1),
    )
    term.type("What is up?\r")
    screen = term.wait(lambda s: "tok/s" in s)
    assert "Title" in screen and "Some bold text." in screen and "• one" in screen
    assert "**" not in screen  # rendered, not raw markdown
    term.type("Tell me a long story\r")
    term.wait(lambda s: "first part" in s)
    term.type("\x03")  # Ctrl-C mid answer: the terminal turns it into SIGINT
    screen = term.wait(lambda s: "[interrupted]" in s)
    assert ollama_env.wait_disconnect(5)
    term.wait(lambda s: s.rstrip().endswith("›"))
    term.leave()
    term.child.close()
    assert term.child.exitstatus == 0


def test_ctrl_c_mid_answer_leaves_no_caret_c_in_it(term: Terminal, ollama_env: FakeOllama) -> None:
    """The terminal echoed "^C" into the answer where Ctrl-C stopped it ("and a^C lon")."""
    ollama_env.queue(Reply(pieces=["first part ", "and more"], fault="never_end", fault_after=1))
    term.wait(prompt_ready)
    term.type("Tell me a long story\r")
    term.wait(lambda s: "first part" in s)
    term.type("\x03")
    screen = term.wait(lambda s: "[interrupted]" in s)
    assert "^C" not in screen, screen
    term.wait(prompt_ready)
    term.leave()


def test_keys_typed_while_an_answer_streams_stay_out_of_it(
    term: Terminal, ollama_env: FakeOllama
) -> None:
    """The terminal echoed them where the answer was being drawn ("molecules of thetyped
    ahead air"): they are kept for the next prompt, and drawn there only."""
    ollama_env.queue(Reply(pieces=["first part ", "second part"], delay=1.5))
    term.wait(prompt_ready)
    term.type("Tell me\r")
    term.wait(lambda s: "first part" in s)
    term.type("typed ahead")
    screen = term.wait(lambda s: "tok/s" in s and s.rstrip().endswith("› typed ahead"))
    assert screen.count("typed ahead") == 1, screen
    assert "first part second part" in screen
    term.type("\x03")
    term.wait(prompt_ready)
    term.leave()


def test_keys_typed_while_ask_answers_go_to_the_shell_not_the_answer(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """`cortan ask` on a terminal: what is typed meanwhile is for the shell after it,
    which draws it at its prompt; echoed, it landed inside the answer."""
    from tests.e2e.test_command_mode import interactive_bash

    ollama_env.queue(Reply(pieces=["first part ", "second part"], delay=1.5))
    with interactive_bash(terminal_env, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + " ask x")
        shell.expect_exact("first part")
        shell.send('echo typed ahea""d')
        shell.expect_exact("PROMPT$ ")
        assert "second part" in (shell.before or "")
        assert "typed ahea" not in (shell.before or "")  # not drawn into the answer
        shell.send("\r")  # bash had the keys: it runs them
        shell.expect_exact("typed ahead")


def test_ask_piped_to_a_pager_leaves_the_terminal_to_it(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """`cortan ask … | less`: less set the terminal (no echo, no lines) before cortan
    turned echo off, and put it back when it quit; cortan, ending after it, put back
    what it had found, less's setting: the shell was left with no echo."""
    from tests.e2e.test_command_mode import interactive_bash

    ollama_env.queue(Reply(pieces=["x" * 20_000] * 3, delay=1.5))  # past a pipe's buffer
    tty = "stty -F /dev/tty"
    pager = f"{{ {tty} -echo -icanon; head -c 5 > /dev/null; {tty} echo icanon; }}"
    with interactive_bash(terminal_env, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + f" ask x | {pager}; echo SETT''INGS; stty -a")
        shell.expect_exact("SETTINGS")
        shell.expect_exact("PROMPT$ ")
        settings = (shell.before or "").split()
        assert "echo" in settings and "icanon" in settings, shell.before


def test_keys_typed_after_ctrl_z_and_fg_stay_out_of_the_answer(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """bash puts its own settings back when Ctrl-Z stops cortan (echo on) and does not
    give the job its own back at ``fg``: what was typed after it was drawn into the answer."""
    from tests.e2e.test_command_mode import interactive_bash

    ollama_env.queue(Reply(pieces=["first part ", "second ", "third part"], delay=1.5))
    with interactive_bash(terminal_env, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + " ask x")
        shell.expect_exact("first part")
        shell.send("\x1a")
        shell.expect_exact("PROMPT$ ")
        shell.sendline("fg")
        shell.expect_exact("second")
        shell.send('echo typed ahea""d')
        shell.expect_exact("PROMPT$ ")
        assert "third part" in (shell.before or "")
        assert "typed ahea" not in (shell.before or "")  # not drawn into the answer
        shell.send("\r")
        shell.expect_exact("typed ahead")


def test_ask_in_the_background_answers_instead_of_stopping(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """`cortan ask x > out &` from an interactive shell: turning echo off from the
    background stopped it at once ("Stopped (tty output)"), with nothing written."""
    from tests.e2e.test_command_mode import interactive_bash

    ollama_env.queue(Reply(pieces=["in the ", "background"]))
    out = tmp_path / "out.txt"
    with interactive_bash(terminal_env, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + f" ask x > {out} & wait $!; echo rc=$?")
        shell.expect(r"rc=(\d+)", timeout=15)
        assert shell.match.group(1) == "0"
        assert out.read_text() == "in the background\n"


@pytest.mark.parametrize("args", [["tools"], ["grants", "log"]], ids=" ".join)
def test_tools_and_the_decision_log_are_tables_on_a_terminal(
    terminal_env: dict[str, str], isolated_env: Path, args: list[str]
) -> None:
    """They printed tab-separated rows with no header, wrapping to column 0, where
    `models`, `keys` and `sessions` print a table that fits the window."""
    from tests.cli.test_grants import keep_grant

    keep_grant(isolated_env / "data", "make test")  # a decision for the log to list
    terminal = Terminal(args, terminal_env)
    try:
        terminal.child.expect(pexpect.EOF, timeout=20)
        terminal.stream.feed(terminal.child.before or b"")
    finally:
        terminal.child.close(force=True)
    rows = [row.rstrip() for row in terminal.screen.display if row.strip()]
    header = rows[0].split()
    assert header[:2] == (["name", "from"] if args == ["tools"] else ["when", "kind"])
    last = rows[0].index("what")  # where the last column starts
    for row in rows[1:]:  # a new row, or the last cell going on under itself
        assert not row[0].isspace() or row[:last].isspace(), row


def test_piped_text_then_keyboard(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("the quarterly numbers\n")
    command = " ".join(cortan_command())
    child = pexpect.spawn(
        "bash", ["-c", f"cat {notes} | {command} chat"], env=terminal_env, dimensions=(ROWS, COLS)
    )
    try:
        child.expect("tok/s", timeout=20)
        assert ollama_env.chat_requests[0].json["messages"][-1]["content"] == (
            "the quarterly numbers\n"
        )
        child.expect("›".encode(), timeout=10)
        child.send("and then?\r")
        child.expect("tok/s", timeout=20)
        assert len(ollama_env.chat_requests[-1].json["messages"]) == 3
        child.send("\x04")
        child.expect(pexpect.EOF, timeout=10)
    finally:
        child.close(force=True)


def answers_shown(count: int, screen: str) -> bool:
    """``count`` answers have ended (each with its footer) and the prompt is back."""
    return screen.count("tok/s") == count and prompt_ready(screen)


def test_ctrl_r_enter_sends_what_it_found(term: Terminal, ollama_env: FakeOllama) -> None:
    """On a real terminal: Ctrl-R finds an older line, Enter sends it (issue 21)."""
    term.wait(prompt_ready)
    for answered, line in enumerate(("alpha question", "beta question"), 1):
        term.type(line + "\r")
        term.wait(functools.partial(answers_shown, answered))
    term.wait(prompt_ready)
    term.type("\x12alph")
    term.wait(lambda s: "(reverse-i-search)`alph': alpha question" in s)
    term.type("\r")
    term.wait(functools.partial(answers_shown, 3))
    assert ollama_env.chat_requests[-1].json["messages"][-1]["content"] == "alpha question"
    term.wait(prompt_ready)
    term.leave()


def test_ctrl_z_at_the_prompt_stops_the_shell_and_fg_goes_on(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """Under an interactive bash, Ctrl-Z at the prompt suspends cortan as it does
    python or ollama run; the line typed is still there after ``fg``. (It used to go
    into the line as a ^Z byte and be sent to the model with what was typed next.)"""
    from tests.e2e.test_command_mode import interactive_bash

    with interactive_bash({**terminal_env, "COLUMNS": str(COLS)}, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + " chat")
        shell.expect_exact("Ctrl-D leaves")
        shell.send("partial line")
        shell.expect_exact("partial line")
        shell.send("\x1a")
        shell.expect("Stopped")
        shell.expect_exact("PROMPT$ ")
        shell.sendline("fg")
        shell.expect_exact("partial line")
        shell.send(" and more\r")
        shell.expect_exact("tok/s")
        sent = ollama_env.chat_requests[-1].json["messages"][-1]["content"]
        assert sent == "partial line and more"
        shell.send("\x04")
        shell.expect_exact("PROMPT$ ")


def test_ask_dash_on_a_terminal_says_how_to_end(
    terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """`cortan ask -` at a terminal waits for typing: it says so, and how to finish."""
    command = cortan_command()
    child = pexpect.spawn(
        command[0], [*command[1:], "ask", "-"], env=terminal_env, dimensions=(ROWS, COLS)
    )
    try:
        child.expect(b"end with Ctrl-D", timeout=20)
        child.send(b"typed question\n")
        child.sendeof()
        child.expect(b"world!", timeout=20)  # drawn piece by piece: "Hello" is written once
        child.expect(pexpect.EOF, timeout=10)
    finally:
        child.close(force=True)
    assert ollama_env.chat_requests[0].json["messages"][-1]["content"] == "typed question\n"


def test_the_banner_comes_before_what_the_options_say(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """`chat --session NAME --role R`: the banner first, then "loaded …" and "role …"."""
    import subprocess

    subprocess.run(
        [*cortan_command(), "ask", "--session", "trip", "plan a trip"],
        env=terminal_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=30,
    )
    terminal = Terminal(["chat", "--session", "trip", "--role", "shell"], terminal_env)
    try:
        screen = terminal.wait(prompt_ready)
        lines = [line for line in screen.splitlines() if line.strip()]
        assert lines[0].startswith("cortan "), screen
        assert lines[1] == "loaded trip: 1 turn", screen
        assert lines[2] == "last: › plan a trip → Hello, world!", screen
        assert lines[3].startswith("role shell"), screen
        terminal.type("\x04")
        terminal.child.expect(pexpect.EOF, timeout=10)
    finally:
        terminal.child.close(force=True)


def test_model_option_without_a_command_opens_the_shell(
    terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """`cortan -m MODEL` on a terminal is the shell with that model, as `ollama run` is."""
    terminal = Terminal(["-m", "ollama:llama3.2:latest"], terminal_env)
    try:
        terminal.wait(prompt_ready)
        terminal.type("hi there\r")
        terminal.wait(lambda s: "Hello, world!" in s)
        terminal.type("\x04")
        terminal.child.expect(pexpect.EOF, timeout=10)
    finally:
        terminal.child.close(force=True)
    assert ollama_env.chat_requests[-1].json["model"] == "llama3.2:latest"
    assert ollama_env.chat_requests[-1].json["messages"][-1]["content"] == "hi there"


def test_a_role_without_a_command_opens_the_shell_with_it(
    terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """`cortan -r shell` is `cortan chat -r shell` (docs/repl.md: chat's options work on
    `cortan` alone); it was taken for a question and refused with "no such option: -r"."""
    terminal = Terminal(["-r", "shell"], terminal_env)
    try:
        screen = terminal.wait(prompt_ready)
        assert "role shell" in screen, screen
        terminal.type("\x04")
        terminal.child.expect(pexpect.EOF, timeout=10)
    finally:
        terminal.child.close(force=True)


def test_generation_flags_without_a_command_reach_the_shells_requests(
    terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """`cortan -o temperature=0.3 --max-tokens 9 --think high` is the shell with them, as
    `ask` takes them; chat refused them ("no such option: -o"), so the only way to a
    temperature in the shell was a role. The flags win over the role's temperature."""
    args = ["-o", "temperature=0.3", "--max-tokens", "9", "--think", "high"]
    terminal = Terminal(args, terminal_env)
    try:
        terminal.wait(prompt_ready)
        terminal.type("hi\r")
        terminal.wait(lambda s: "Hello, world!" in s)
        terminal.type("/set\r")
        screen = terminal.wait(lambda s: "options:" in s)
        assert "temperature = 0.3" in screen and "max_tokens = 9" in screen, screen
        terminal.type("\x04")
        terminal.child.expect(pexpect.EOF, timeout=10)
    finally:
        terminal.child.close(force=True)
    body = ollama_env.chat_requests[-1].json
    assert body["options"]["temperature"] == 0.3 and body["options"]["num_predict"] == 9
    assert body["think"] == "high"


def test_a_bad_generation_flag_stops_the_shell_before_it_opens(
    terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    terminal = Terminal(["chat", "-o", "temprature=1"], terminal_env)
    try:
        terminal.child.expect(pexpect.EOF, timeout=10)
        terminal.stream.feed(terminal.child.before or b"")
    finally:
        terminal.child.close(force=True)
    assert "unknown option 'temprature' (did you mean temperature?)" in terminal.text()
    assert terminal.child.exitstatus == 2 and not ollama_env.chat_requests


def test_a_long_thought_shows_only_its_last_rows_under_the_spinner(
    term: Terminal, ollama_env: FakeOllama
) -> None:
    """Reasoning in one long paragraph was its own "last line": the spinner drew it from
    its start, growing until it filled the screen and rich cut it with "...", the end
    of the thought never in sight."""
    words = [f"step {i}: weigh the factor {i * 7}." for i in range(120)]
    thought = [word + " " for word in words] + ["DONE."]
    ollama_env.queue(Reply(thinking=thought, pieces=["4"], fault="never_end", fault_after=0))
    term.wait(prompt_ready)
    term.type("think it through\r")
    screen = term.wait(lambda s: "DONE." in s)
    rows = [row for row in screen.splitlines() if row.strip()]
    live = rows[next(i for i, row in enumerate(rows) if "thinking ·" in row) :]
    assert len(live) <= 4, screen  # the spinner's row and the tail's three at most
    assert live[-1].rstrip().endswith("DONE.") and "..." not in screen
    assert "step 0:" not in screen
    term.type("\x03")
    term.wait(lambda s: "[interrupted before the answer began]" in s)
    term.leave()
