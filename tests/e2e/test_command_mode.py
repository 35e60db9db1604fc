"""Command mode on a pseudo-terminal: every answer at the prompt, for real.

The real ``cortan cmd`` (and the REPL's ``/run``) runs on a pty against the loopback
Ollama; the screen is modelled with pyte, so what is asserted is what a person sees.
What ran is proved by marker files in the test's folder (the command's cwd), and the
decision log by ``cortan grants log --json``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.conftest import CortanRunner, cortan_command
from tests.servers import FakeCall, FakeOllama, Reply

pytestmark = pytest.mark.e2e

ROWS, COLS = 30, 110
MENU = "[N]o, abort:"


def proposal(command: str, explanation: str = "does what you asked") -> Reply:
    return Reply(pieces=[json.dumps({"command": command, "explanation": explanation})])


class Pty:
    """cortan on a pty: the screen it drew, the raw bytes, its exit status."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        command = cortan_command()
        self.child = pexpect.spawn(
            command[0],
            [*command[1:], *args],
            env=env,
            cwd=str(cwd),
            dimensions=(ROWS, COLS),
            encoding=None,
        )
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def pump(self) -> None:
        try:
            while True:
                data = self.child.read_nonblocking(65536, timeout=0.05)
                self.raw += data
                self.stream.feed(data)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def wait(self, predicate: Callable[[str], bool], timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if predicate(self.text()):
                return self.text()
        raise AssertionError(f"screen never matched; it shows:\n{self.text()}")

    def wait_for(self, fragment: str, count: int = 1) -> str:
        return self.wait(lambda screen: screen.count(fragment) >= count)

    def type(self, text: str) -> None:
        self.child.send(text.encode())

    def status(self) -> int:
        """Wait for the end; the exit status."""
        self.child.expect(pexpect.EOF, timeout=20)
        self.raw += self.child.before or b""
        self.stream.feed(self.child.before or b"")
        self.child.close()
        assert self.child.exitstatus is not None, self.text()
        return int(self.child.exitstatus)


@pytest.fixture
def env(ollama_env: FakeOllama) -> dict[str, str]:
    found = dict(os.environ)
    found.update(
        PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color", COLUMNS=str(COLS), SHELL="/bin/bash"
    )
    return found


@pytest.fixture
def spawn(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Pty]]:
    started: list[Pty] = []

    def start(*args: str) -> Pty:
        terminal = Pty(list(args), env, tmp_path)
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.child.close(force=True)


def last_decision(cortan: type[CortanRunner]) -> dict[str, object]:
    rows = json.loads(cortan.run("grants", "log", "--json").stdout)
    return rows[-1]  # type: ignore[no-any-return]


def test_execute_runs_in_the_shell_and_exits_with_its_status(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path, cortan: type[CortanRunner]
) -> None:
    ollama_env.queue(proposal("touch made && exit 3", "makes a file"))
    term = spawn("cmd", "make", "a", "file")
    screen = term.wait_for(MENU)
    assert "$ touch made && exit 3" in screen
    assert "# makes a file" in screen
    assert "[y]es, run it" in screen
    term.type("y\r")
    term.wait_for("exit status 3")
    assert term.status() == 3
    assert (tmp_path / "made").exists()
    decision = last_decision(cortan)
    assert (decision["by"], decision["status"], decision["allowed"]) == ("user", 3, True)


def test_enter_aborts(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path, cortan: type[CortanRunner]
) -> None:
    ollama_env.queue(proposal("touch made"))
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("\r")
    term.wait_for("aborted: nothing ran")
    assert term.status() == 5
    assert not (tmp_path / "made").exists()
    assert last_decision(cortan)["by"] == "refused"


def test_risky_needs_the_word_yes(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    ollama_env.queue(proposal("rm -r victim"), proposal("rm -r victim"))
    term = spawn("cmd", "remove victim")
    screen = term.wait_for(MENU)
    assert "! deletes files" in screen
    assert "type yes to run it" in screen
    term.type("y\r")
    term.wait_for("type the whole word yes")
    term.type("\r")  # Enter alone: abort
    assert term.status() == 5
    assert victim.exists()
    term = spawn("cmd", "remove victim")
    term.wait_for(MENU)
    term.type("yes\r")
    assert term.status() == 0
    assert not victim.exists()


def test_edit_prefills_the_line(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("touch aa"))
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("e\r")
    term.wait_for("edit: touch aa")
    term.type("\x7fb\r")  # backspace, b: "touch ab"
    screen = term.wait_for(MENU, 2)
    assert "$ touch ab" in screen and "(edited by you)" in screen
    term.type("y\r")
    assert term.status() == 0
    assert (tmp_path / "ab").exists() and not (tmp_path / "aa").exists()


def test_revise_asks_again_with_the_conversation(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("touch one"), proposal("touch two", "makes two"))
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("r\r")
    term.wait_for("what should change?")
    term.type("call it two\r")
    screen = term.wait_for(MENU, 2)
    assert "$ touch two" in screen
    term.type("y\r")
    assert term.status() == 0
    assert (tmp_path / "two").exists() and not (tmp_path / "one").exists()
    revise = ollama_env.chat_requests[-1].json["messages"]
    assert [m["role"] for m in revise] == ["system", "user", "assistant", "user"]
    assert "call it two" in revise[-1]["content"] and "touch one" in revise[-1]["content"]


def test_describe_shows_a_longer_explanation(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("touch made"), Reply(pieces=["It creates\nan empty file."]))
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("d\r")
    screen = term.wait_for(MENU, 2)
    assert "It creates" in screen and "an empty file." in screen
    assert "format" not in ollama_env.chat_requests[-1].json  # prose, not the schema
    term.type("n\r")
    assert term.status() == 5
    assert not (tmp_path / "made").exists()


def test_copy_uses_osc_52(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("touch made"))
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("c\r")
    term.wait_for("copied to the clipboard")
    assert term.status() == 0
    assert b"\x1b]52;c;dG91Y2ggbWFkZQ==\x07" in term.raw  # base64 of "touch made"
    assert not (tmp_path / "made").exists()


def test_hard_denial_offers_no_way_to_run(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, cortan: type[CortanRunner]
) -> None:
    ollama_env.queue(proposal("rm -rf ~"))
    term = spawn("cmd", "clean my home")
    screen = term.wait_for("[N]o, abort:")
    assert "cortan will not run this: it deletes" in screen
    assert "[y]es" not in screen and "type yes" not in screen
    term.type("yes\r")
    term.wait_for("this command cannot run")
    term.type("\r")
    assert term.status() == 5
    assert last_decision(cortan)["by"] == "denied"


def test_ctrl_c_and_ctrl_d_abort(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("touch made"), proposal("touch made"))
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("\x03")
    assert term.status() == 130
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("\x04")
    assert term.status() == 5
    assert not (tmp_path / "made").exists()


def test_hostile_command_is_shown_visible_and_marked(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("ls\u200b \x1b[8mtouch made\x1b[0m", "lists\x1b[2J files"))
    term = spawn("cmd", "list files")
    screen = term.wait_for(MENU)
    assert "<U+200B>" in screen
    assert "not visible" in screen
    assert "type yes to run it" in screen  # marked risky: Enter or y never runs it
    term.type("\r")
    assert term.status() == 5
    assert not (tmp_path / "made").exists()


def test_run_in_the_repl(spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path) -> None:
    ollama_env.queue(proposal("touch made", "makes a file"), Reply(pieces=["all fine"]))
    term = spawn()
    term.wait_for("›")
    term.type("/run make a file\r")
    screen = term.wait_for(MENU)
    assert "explanation" not in screen  # the model's JSON is not drawn as an answer
    term.type("y\r")
    term.wait_for("exit status 0")
    assert (tmp_path / "made").exists()
    term.wait(lambda s: s.rstrip().splitlines()[-1:] == ["›"])
    term.type("what did you make?\r")
    term.wait_for("fine")  # the next answer is drawn as ever
    term.type("\x04")
    assert term.status() == 0


def test_an_always_yes_to_a_tool_call_lets_cmd_yes_run_that_command(
    spawn: Callable[..., Pty],
    ollama_env: FakeOllama,
    tmp_path: Path,
    cortan: type[CortanRunner],
) -> None:
    """docs/commands.md: a lasting grant given at a tool call applies to the same command
    in command mode. It never did: the grant is kept as the tool's JSON arguments, under
    kind `tool`, and `cortan cmd --yes` asked again."""
    ollama_env.queue(
        Reply(pieces=[], tool_calls=[FakeCall("run_command", {"command": "touch made"})]),
        Reply(pieces=["Made it."]),
    )
    asked = spawn("ask", "--tools", "make a file")
    asked.wait_for("Allow?")
    asked.type("always\r")
    assert asked.status() == 0
    (tmp_path / "made").unlink()
    ollama_env.queue(proposal("touch made", "makes a file"))
    term = spawn("cmd", "--yes", "make a file")
    assert term.status() == 0
    assert MENU not in term.text() and "allowed by an earlier yes" in term.text()
    assert (tmp_path / "made").exists()
    assert last_decision(cortan)["by"] == "grant"
    ollama_env.queue(proposal("touch made; rm -rf ~", "makes a file, and more"))
    other = spawn("cmd", "--yes", "make a file")
    other.wait_for(MENU)  # another command line: asked about, as ever
    other.type("\r")
    assert other.status() == 5


def thinking_proposal(command: str) -> Reply:
    """A proposal that a thinking model reasons about for about two seconds first."""
    thought = [f"step {n} of weighing find against du. " for n in range(40)]
    return Reply(
        thinking=thought, pieces=[json.dumps({"command": command, "explanation": "x"})], delay=0.05
    )


@pytest.mark.parametrize("where", ["cmd", "run"])
def test_a_thinking_models_reasoning_shows_while_it_thinks(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, where: str
) -> None:
    """Only "asking the model for a command…" stood on the screen for as long as the
    model thought: the reasoning went to no view (cmd has none; the REPL's skipped it)."""
    ollama_env.queue(thinking_proposal("ls -S | head"))
    if where == "cmd":
        term = spawn("cmd", "largest files")
    else:
        term = spawn()
        term.wait_for("›")
        term.type("/run largest files\r")
    live = term.wait_for("weighing find against du")
    assert "thinking ·" in live and MENU not in live
    screen = term.wait_for(MENU)
    assert "thought for" in screen and "$ ls -S | head" in screen
    assert "weighing" not in screen  # folded into its line
    hint = "(/thinking shows it)"
    assert (hint in screen) == (where == "run")  # only the REPL has /thinking
    term.type("\r")
    term.wait_for("aborted: nothing ran")


def test_ctrl_c_while_the_model_thinks_says_nothing_ran(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(thinking_proposal("touch made"))
    term = spawn("cmd", "make a file")
    term.wait_for("weighing find against du")
    term.child.sendintr()
    screen = term.wait_for("interrupted: nothing ran")
    assert "thought for" in screen
    assert "^C" not in screen  # the terminal's echo of it, drawn into the thinking line
    assert term.status() == 130
    assert not (tmp_path / "made").exists()


def test_ctrl_c_while_the_model_is_asked_draws_no_caret_c(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    slow = proposal("touch made")
    slow.first_byte_delay = 30
    ollama_env.queue(slow)
    term = spawn("cmd", "make a file")
    term.wait_for("asking the model for a command")
    time.sleep(0.3)
    term.child.sendintr()
    screen = term.wait_for("interrupted: nothing ran")
    assert "^C" not in screen  # the terminal's echo of it
    assert term.status() == 130


def test_show_thinking_false_keeps_the_reasoning_off_the_screen(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, config_file: Path
) -> None:
    """docs/models.md: ``show_thinking = false`` shows only the folded line, never the text."""
    config_file.write_text("show_thinking = false\n")
    ollama_env.queue(thinking_proposal("ls -S | head"))
    term = spawn("cmd", "largest files")
    screen = term.wait_for(MENU)
    assert "thought for" in screen
    assert "weighing" not in term.raw.decode("utf-8", "replace")
    term.type("\r")
    assert term.status() == 5


def test_a_yes_typed_while_the_model_answers_answers_nothing(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    body = json.dumps({"command": "touch made", "explanation": "makes a file"})
    ollama_env.queue(Reply(pieces=[body[:5], body[5:]], delay=1.5))
    term = spawn("cmd", "make a file")
    term.wait_for("asking the model")
    term.type("y\r")  # typed ahead, before any question was on the screen
    screen = term.wait_for(MENU)
    assert "typed before this question was ignored" in screen
    time.sleep(0.5)  # had the y been taken, the command would run now
    assert not (tmp_path / "made").exists()
    term.type("\r")
    assert term.status() == 5
    assert not (tmp_path / "made").exists()


def test_a_nul_in_the_command_is_refused_in_one_sentence(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("echo a\x00b > made"))
    term = spawn("cmd", "make a file")
    screen = term.wait_for(MENU)
    assert "$ echo a\u2400b > made" in screen
    assert "cortan will not run this: it holds a NUL character" in screen
    term.type("\r")
    assert term.status() == 5
    assert b"internal error" not in term.raw
    assert not (tmp_path / "made").exists()


def test_blanks_that_push_the_start_off_the_screen_are_said(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("ls" + " " * 4000 + "; touch made"))
    term = spawn("cmd", "list files")
    screen = term.wait_for(MENU)
    assert "$ ls" not in screen  # the start is out of sight: the risk says why
    assert "holds 4000 blanks in a row" in screen
    assert "type yes to run it" in screen
    term.type("y\r")
    term.wait_for("type the whole word yes")
    term.type("\r")
    assert term.status() == 5
    assert not (tmp_path / "made").exists()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_at_the_question_runs_nothing_and_gives_the_terminal_back(
    signum: int,
    code: int,
    spawn: Callable[..., Pty],
    ollama_env: FakeOllama,
    tmp_path: Path,
    cortan: type[CortanRunner],
) -> None:
    ollama_env.queue(proposal("touch made"))
    term = spawn("cmd", "make a file")
    term.wait_for(MENU)
    term.type("ye")  # half an answer: a signal is never a yes
    term.wait_for(MENU + " ye")
    term.child.kill(signum)
    assert term.status() == code
    assert not (tmp_path / "made").exists()
    assert b"aborted: nothing ran" in term.raw
    assert term.raw.rfind(b"\x1b[?2004l") > term.raw.rfind(b"\x1b[?2004h")  # paste mode off
    decision = last_decision(cortan)
    assert (decision["allowed"], decision["by"]) == (False, "refused")


def test_a_long_explanation_cannot_push_the_command_off_the_screen(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("touch made", "harmless. " * 1000))
    term = spawn("cmd", "make a file")
    screen = term.wait_for(MENU)
    assert "$ touch made" in screen
    assert screen.count("harmless.") < 40
    assert b"characters more not shown" in term.raw
    term.type("\r")
    assert term.status() == 5


def test_a_command_taller_than_the_screen_needs_the_word_yes(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("echo " + "a" * (ROWS * COLS) + "; touch made"))
    term = spawn("cmd", "make a file")
    screen = term.wait_for(MENU)
    assert "$ echo" not in screen  # its start is out of sight: the risk says so
    assert f"rows tall on a screen of {ROWS}: scroll up to read it whole" in screen
    term.type("y\r")
    term.wait_for("type the whole word yes")
    term.type("\r")
    assert term.status() == 5
    assert not (tmp_path / "made").exists()


def test_copy_puts_on_the_clipboard_what_was_shown(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("ls \u202etouch made"))
    term = spawn("cmd", "list files")
    term.wait_for(MENU)
    term.type("c\r")
    term.wait_for("copied to the clipboard")
    assert term.status() == 0
    shown = base64.b64encode(b"ls <U+202E>touch made").decode()
    assert f"\x1b]52;c;{shown}\x07".encode() in term.raw  # no hidden mark to paste


def _appeared(path: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_sigterm_while_the_command_runs_is_passed_on_before_cortan_exits(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # The handler sleeps: cortan must wait for it. Without passing SIGTERM on, cortan
    # left at once and the command died of the SIGHUP its terminal's end sent.
    ollama_env.queue(
        proposal(
            "trap 'sleep 0.3; echo TERM >> got; exit 7' TERM; trap 'echo HUP >> got' HUP;"
            " touch started; sleep 60 & wait"
        )
    )
    term = spawn("cmd", "wait a minute")
    term.wait_for(MENU)
    term.type("y\r")
    _appeared(tmp_path / "started")
    term.child.kill(signal.SIGTERM)
    assert term.status() == 143
    assert (tmp_path / "got").read_text() == "TERM\n"


def test_ctrl_c_reaches_the_command_once(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(
        proposal(
            "trap 'echo INT >> ints' INT; touch started;"
            " while [ ! -e stop ]; do sleep 0.05; done; exit 4"
        )
    )
    term = spawn("cmd", "count interrupts")
    term.wait_for(MENU)
    term.type("y\r")
    _appeared(tmp_path / "started")
    term.type("\x03")
    _appeared(tmp_path / "ints")
    time.sleep(0.5)  # a second delivery would land by now
    (tmp_path / "stop").touch()
    term.wait_for("exit status 4")
    assert term.status() == 4
    assert (tmp_path / "ints").read_text() == "INT\n"


def test_ctrl_z_with_no_job_control_above_lets_the_command_go_on(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # cortan leads its own session here: nobody could `fg` it, so the kernel drops the
    # stop; the command, stopped by the terminal, must be continued, not waited on.
    ollama_env.queue(
        proposal("touch started; while [ ! -e stop ]; do sleep 0.05; done; touch finished")
    )
    term = spawn("cmd", "wait for stop")
    term.wait_for(MENU)
    term.type("y\r")
    _appeared(tmp_path / "started")
    term.type("\x1a")
    time.sleep(0.3)
    (tmp_path / "stop").touch()
    term.wait_for("exit status 0")
    assert term.status() == 0
    assert (tmp_path / "finished").exists()


@contextlib.contextmanager
def interactive_bash(env: dict[str, str], cwd: Path) -> Iterator[pexpect.spawn[str]]:
    """An interactive bash with job control, as a person's terminal runs one, at its
    first prompt (``PROMPT$ ``); closed, with what it runs, however the test ends."""
    shell = pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-i"],
        env={**env, "PS1": "PROMPT$ "},
        cwd=str(cwd),
        dimensions=(ROWS, COLS),
        encoding="utf-8",
        timeout=15,
    )
    try:
        shell.expect_exact("PROMPT$ ")
        yield shell
    finally:
        shell.close(force=True)


def test_ctrl_z_stops_cortan_in_a_shell_and_fg_goes_on(
    env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """Under an interactive bash: Ctrl-Z stops the command and cortan's job, the shell
    says so and gets the terminal back, and ``fg`` continues both."""
    ollama_env.queue(
        proposal("touch started; while [ ! -e stop ]; do sleep 0.05; done; touch finished")
    )
    with interactive_bash(env, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + " cmd wait for stop")
        shell.expect_exact(MENU)
        shell.send("y\r")
        _appeared(tmp_path / "started")
        shell.send("\x1a")
        shell.expect("Stopped")
        shell.expect_exact("PROMPT$ ")
        (tmp_path / "stop").touch()
        time.sleep(0.3)
        assert not (tmp_path / "finished").exists()  # stopped means stopped
        shell.sendline("fg")
        shell.expect_exact("exit status 0")
        shell.expect_exact("PROMPT$ ")
        assert (tmp_path / "finished").exists()


def test_ctrl_z_at_the_question_stops_cortan_and_fg_asks_again(
    env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """Ctrl-Z at the yes/no question suspends cortan as at any shell prompt (it used
    to be typed into the answer as ^Z and refused)."""
    ollama_env.queue(proposal("touch ran"))
    with interactive_bash(env, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + " cmd make a file")
        shell.expect_exact(MENU)
        shell.send("\x1a")
        shell.expect("Stopped")
        shell.expect_exact("PROMPT$ ")
        shell.sendline("fg")
        shell.send("y\r")
        shell.expect_exact("exit status 0")
        shell.expect_exact("PROMPT$ ")
        assert (tmp_path / "ran").exists()


def test_in_a_pipeline_the_other_parts_keep_the_terminal(
    env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """``cortan cmd … | less``: handed the terminal, the command pushed the pipeline's
    other parts into the background, and the one reading the keys was stopped."""
    ollama_env.queue(proposal("touch started; while [ ! -e stop ]; do sleep 0.05; done; echo done"))
    reader = (
        "(while [ ! -e started ]; do sleep 0.05; done; "
        'IFS= read -r k < /dev/tty; echo "read $k" > got; cat)'
    )
    with interactive_bash(env, tmp_path) as shell:
        shell.sendline(" ".join(cortan_command()) + " cmd wait for stop | " + reader)
        shell.expect_exact(MENU)
        shell.send("y\r")
        _appeared(tmp_path / "started")
        time.sleep(0.3)  # the reader is at its read
        shell.send("hello\r")
        _appeared(tmp_path / "got")
        (tmp_path / "stop").touch()
        shell.expect_exact("PROMPT$ ")
        assert "Stopped" not in (shell.before or "")
        assert (tmp_path / "got").read_text() == "read hello\n"


def test_sigterm_to_the_repl_during_run_is_passed_on_to_the_command(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """The REPL had no handler: killed during /run, it left the command running."""
    script = tmp_path / "job.sh"
    script.write_text(
        f"trap 'echo TERM > {tmp_path}/got; exit 7' TERM\n"
        f"echo $$ > {tmp_path}/shell\nwhile :; do sleep 0.05; done\n"
    )
    ollama_env.queue(proposal(f"bash {script}", "runs the job"))
    term = spawn()
    term.wait_for("›")
    term.type("/run the job\r")
    term.wait_for(MENU)
    term.type("y\r")
    _appeared(tmp_path / "shell")
    term.child.kill(signal.SIGTERM)
    code = term.status()
    assert (tmp_path / "got").read_text() == "TERM\n"
    assert code == 143


def test_sigterm_to_the_repl_keeps_the_partial_answer_and_exits_143(
    spawn: Callable[..., Pty], ollama_env: FakeOllama, tmp_path: Path, cortan: type[CortanRunner]
) -> None:
    """Killed mid-answer, the REPL stores what arrived, as `ask` does; at the prompt it
    leaves with the terminal as it found it."""
    ollama_env.queue(Reply(pieces=["partial "] * 200, delay=0.05))
    term = spawn()
    term.wait_for("›")
    term.type("tell me\r")
    term.wait_for("partial partial")
    term.child.kill(signal.SIGTERM)
    assert term.status() == 143
    logged = cortan.run("logs", "--json", "-n", "1").stdout
    assert '"status": "interrupted"' in logged and "partial partial" in logged
    idle = spawn()
    idle.wait_for("›")
    idle.child.kill(signal.SIGTERM)
    assert idle.status() == 143
    assert b"\x1b[?2004l" in idle.raw  # bracketed paste turned off again: the terminal is back
