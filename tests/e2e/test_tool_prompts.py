"""The approval prompts on a real terminal: `ask --tools` and the REPL's `/tools on`.

The question is asked on the terminal (``/dev/tty``), never on stdout: with stdout
redirected to a file the prompt is still on the screen and the file holds only the
answer. Enter alone is no; ``y`` runs it once (a risky call only the word ``yes``);
``s`` for the session is not asked again; Ctrl-C at the question stops the request
(exit 130), nothing run.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pexpect
import pytest

from tests.conftest import cortan_command
from tests.e2e.test_terminal import COLS, ROWS, Terminal, prompt_ready
from tests.servers import FakeCall, FakeOllama, Reply

pytestmark = pytest.mark.e2e


@pytest.fixture
def terminal_env(ollama_env: FakeOllama) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color", COLUMNS=str(COLS))
    return env


def command_call(command: str) -> Reply:
    return Reply(
        pieces=["Running it."],
        tool_calls=[FakeCall("run_command", {"command": command})],
        finish_reason="tool_calls",
    )


@pytest.fixture
def shell_ask(terminal_env: dict[str, str], tmp_path: Path) -> Iterator[pexpect.spawn]:
    """`cortan ask --tools ... > out.txt` in a shell on a pty: stdout is a file."""
    command = " ".join(shlex.quote(part) for part in cortan_command())
    out = tmp_path / "out.txt"
    line = f"{command} ask --tools 'make the file' > {shlex.quote(str(out))}"
    child = pexpect.spawn("bash", ["-c", line], env=terminal_env, dimensions=(ROWS, COLS))
    yield child
    child.close(force=True)


def test_yes_once_runs_it_and_stdout_holds_only_the_answer(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    target = tmp_path / "made"
    ollama_env.queue(command_call(f"touch {target}"), Reply(pieces=["Made it."]))
    shell_ask.expect(rb"runs  touch .*made", timeout=20)
    shell_ask.expect(rb"Allow\? \[y\] yes, once", timeout=5)
    assert not target.exists()
    shell_ask.send(b"yes\r")
    # The answer is seen as it is typed (the streaming answer had turned echo off).
    shell_ask.expect(rb"\[N\] no: yes\r\n", timeout=5)
    shell_ask.expect(pexpect.EOF, timeout=20)
    shell_ask.close()
    assert shell_ask.exitstatus == 0
    assert target.exists()
    out = (tmp_path / "out.txt").read_text()
    assert out == "Running it.\n\nMade it.\n"
    assert "Allow" not in out


def test_enter_alone_is_no(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    target = tmp_path / "made"
    ollama_env.queue(command_call(f"rm -f {tmp_path}/x; touch {target}"), Reply(pieces=["ok"]))
    shell_ask.expect(rb"risk  deletes files", timeout=20)
    shell_ask.expect(rb"Allow\?", timeout=5)
    shell_ask.send(b"\r")
    shell_ask.expect(rb"was not run: you said no", timeout=10)
    shell_ask.expect(pexpect.EOF, timeout=20)
    shell_ask.close()
    assert shell_ask.exitstatus == 0
    assert not target.exists()
    sent = [m for m in ollama_env.chat_requests[1].json["messages"] if m["role"] == "tool"]
    assert "you said no" in sent[0]["content"]


def test_a_risky_call_needs_the_whole_word(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """As command mode: one key slips too easily for a call that deletes files."""
    doomed, target = tmp_path / "x", tmp_path / "made"
    doomed.write_text("keep")
    ollama_env.queue(command_call(f"rm -f {doomed}; touch {target}"), Reply(pieces=["ok"]))
    shell_ask.expect(rb"risk  deletes files", timeout=20)
    shell_ask.expect(rb"Allow\? it is risky: type yes \(once\), session or always", timeout=5)
    shell_ask.send(b"y\r")
    shell_ask.expect(rb"a single key does not allow a risky call: type the word", timeout=10)
    assert doomed.exists()
    shell_ask.send(b"yes\r")
    shell_ask.expect(pexpect.EOF, timeout=20)
    shell_ask.close()
    assert shell_ask.exitstatus == 0
    assert target.exists() and not doomed.exists()


def test_single_keys_at_a_risky_call_end_in_no(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    doomed = tmp_path / "x"
    doomed.write_text("keep")
    ollama_env.queue(command_call(f"rm -f {doomed}"), Reply(pieces=["ok"]))
    shell_ask.expect(rb"Allow\?", timeout=20)
    for key in (b"y", b"a", b"s"):
        shell_ask.send(key + b"\r")
    shell_ask.expect(rb"was not run: you said no", timeout=10)
    shell_ask.expect(pexpect.EOF, timeout=20)
    shell_ask.close()
    assert shell_ask.exitstatus == 0
    assert doomed.read_text() == "keep"


def test_ctrl_c_at_the_question_stops_the_request(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    target = tmp_path / "made"
    ollama_env.queue(command_call(f"touch {target}"))
    shell_ask.expect(rb"Allow\?", timeout=20)
    shell_ask.sendintr()
    shell_ask.expect(pexpect.EOF, timeout=20)
    shell_ask.close()
    assert shell_ask.exitstatus == 130
    assert not target.exists()
    assert (tmp_path / "out.txt").read_text().startswith("Running it.")


def test_the_repl_asks_and_a_session_yes_holds(
    terminal_env: dict[str, str], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    target = tmp_path / "log"
    command = f"echo one >> {target}"
    ollama_env.queue(
        command_call(command),
        Reply(pieces=["Once."]),
        command_call(command),
        Reply(pieces=["Twice."]),
    )
    term = Terminal([], terminal_env)
    try:
        term.wait(prompt_ready)
        term.type("/tools on\r")
        term.wait(lambda s: "tools: on" in s)
        term.type("append a line\r")
        term.wait(lambda s: "Allow?" in s)
        term.type("s\r")
        term.wait(lambda s: "Once." in s and prompt_ready(s))
        term.type("again\r")
        term.wait(lambda s: "Twice." in s and prompt_ready(s))
        assert term.text().count("Allow?") == 1  # the session's yes was not asked again
        term.leave()
    finally:
        term.child.close(force=True)
    assert target.read_text() == "one\none\n"


@contextmanager
def at_the_question(args: list[str], env: dict[str, str]) -> Iterator[Terminal]:
    """cortan at a tool call's question: `ask --tools` (``args``), or the REPL (no
    ``args``) with /tools on, asked to list the folder."""
    term = Terminal(args, env)
    try:
        if not args:
            term.wait(prompt_ready)
            term.type("/tools on\r")
            term.wait(lambda s: "tools: on" in s)
            term.type("list it\r")
        term.wait(lambda s: "Allow?" in s)
        yield term
    finally:
        term.child.close(force=True)


def answered_yes(term: Terminal) -> tuple[str, list[str]]:
    """Yes to the question; the screen once the answer came, and its rows that hold text."""
    term.type("y\r")
    screen = term.wait(lambda s: "Listed." in s)
    return screen, [row.strip() for row in screen.splitlines() if row.strip()]


@pytest.mark.parametrize("args", [["ask", "--tools", "look"], []], ids=["ask", "repl"])
def test_the_question_stays_on_screen_while_it_waits(
    args: list[str], terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    # A call with no text before it: the spinner was still turning when the question
    # was asked, and drew over it, with stdout on the terminal too.
    ollama_env.queue(
        Reply(
            pieces=[], tool_calls=[FakeCall("list_dir", {"path": "."})], finish_reason="tool_calls"
        ),
        Reply(pieces=["Listed."]),
    )
    with at_the_question(args, terminal_env) as term:
        time.sleep(1.0)  # several spinner frames, were it turning
        term.pump()
        last = term.text().rstrip().splitlines()[-1]
        assert last.startswith("Allow? [y] yes, once"), term.text()
        term.type("y\r")
        term.wait(lambda s: "Listed." in s)
        assert "gave" in term.text()


def test_a_command_padded_past_what_is_shown_needs_the_word(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """Before: the `runs` line was cut at 4000 characters without a word, so `touch ok`
    and 4000 spaces hid `; touch hidden`, and one key (`y`) ran both."""
    hidden = tmp_path / "hidden"
    padded = f"touch {tmp_path}/ok" + " " * 4100 + f"; touch {hidden}"
    ollama_env.queue(command_call(padded), Reply(pieces=["ok"]))
    shell_ask.expect(rb"characters more not shown: say no unless sure", timeout=20)
    shell_ask.expect(rb"risk  is too long to show whole \(\d+ characters not shown\)", timeout=5)
    shell_ask.expect(rb"Allow\? it is risky: type yes", timeout=5)
    shell_ask.send(b"y\r")
    shell_ask.expect(rb"a single key does not allow a risky call", timeout=5)
    shell_ask.send(b"\r")
    shell_ask.expect(pexpect.EOF, timeout=20)
    assert not hidden.exists()


def test_a_line_break_in_a_command_cannot_print_the_prompts_own_lines(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    forged = f"touch {tmp_path}/x\n  risk  none\nAllow? [y] yes:"
    ollama_env.queue(command_call(forged), Reply(pieces=["ok"]))
    shell_ask.expect(
        rb"runs  touch \S+/x\r\n     >    risk  none\r\n     >  Allow\? \[y\]", timeout=20
    )
    shell_ask.expect(rb"risk  runs several lines", timeout=5)
    shell_ask.send(b"\r")
    shell_ask.expect(pexpect.EOF, timeout=20)


@pytest.mark.parametrize("args", [["ask", "--tools", "look"], []], ids=["ask", "repl"])
def test_words_before_a_call_are_drawn_whole_above_its_line(
    args: list[str], terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """In the REPL, "Let me look at the files." streamed just before a call was cut by
    the call's line: `Let`, the tool's lines, then `    me look at the files.`"""
    ollama_env.queue(
        Reply(
            pieces=["Let ", "me look ", "at the files."],
            tool_calls=[FakeCall("list_dir", {"path": "."})],
            finish_reason="tool_calls",
        ),
        Reply(pieces=["Listed."]),
    )
    with at_the_question(args, terminal_env) as term:
        screen, rows = answered_yes(term)
    said = rows.index("Let me look at the files.")
    assert "tool: list_dir" in rows[said + 1], screen
    assert rows.index("Listed.") > said


@pytest.mark.parametrize("args", [["ask", "--tools", "look"], []], ids=["ask", "repl"])
def test_a_thought_before_a_call_is_closed_before_its_line(
    args: list[str], terminal_env: dict[str, str], ollama_env: FakeOllama
) -> None:
    """`ask --tools` on a terminal glued the call's line to the reasoning
    (`I should list the folder.cortan: tool: list_dir …`) and summed the thought up
    only after the call; thinking again after the call was never summed up at all."""
    ollama_env.queue(
        Reply(
            thinking=["I should list ", "the folder."],
            pieces=[],
            tool_calls=[FakeCall("list_dir", {"path": "."})],
            finish_reason="tool_calls",
        ),
        Reply(thinking=["Now I can answer."], pieces=["Listed."]),
    )
    with at_the_question(args, terminal_env) as term:
        screen, rows = answered_yes(term)
    first = next(i for i, row in enumerate(rows) if row.startswith("thought for"))
    call = next(i for i, row in enumerate(rows) if "tool: list_dir {" in row)
    assert first < call, screen
    assert not any("folder.cortan" in row for row in rows), screen
    assert sum(row.startswith("thought for") for row in rows[call:]) == 1, screen


def test_a_yes_typed_before_the_question_answers_nothing(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    target = tmp_path / "made"
    slow = command_call(f"touch {target}")
    slow.delay = 1.5
    slow.pieces = ["Running", " it."]
    ollama_env.queue(slow, Reply(pieces=["Not made."]))
    time.sleep(0.5)  # the request is on its way; the question is not asked yet
    shell_ask.send(b"y\r")
    shell_ask.expect(rb"typed before this question was ignored", timeout=20)
    shell_ask.expect(rb"Allow\? \[y\] yes, once", timeout=5)
    time.sleep(0.5)
    assert not target.exists()
    shell_ask.send(b"\r")
    shell_ask.expect(pexpect.EOF, timeout=20)
    shell_ask.close()
    assert not target.exists()


def test_a_lasting_yes_says_what_it_covers(
    shell_ask: pexpect.spawn, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(command_call("true"), Reply(pieces=["Done."]))
    shell_ask.expect(rb"runs  true", timeout=20)
    shell_ask.expect(rb"\[s\] this command, this session .+ \[a\] this command, always", timeout=5)
    shell_ask.send(b"\r")
    shell_ask.expect(pexpect.EOF, timeout=20)
