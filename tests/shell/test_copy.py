"""`/copy` and `/copy code`: the last answer to the terminal's clipboard by OSC 52 (issue 21).

In process, the console writes to a file that says it is a terminal; on a real
pseudo-terminal, the bytes the shell wrote are read back and decoded.
"""

from __future__ import annotations

import base64
import io
import os
import re

import pexpect
import pytest

from cortan.render.clipboard import MAX_COPY_BYTES, make_osc52
from tests.conftest import cortan_command
from tests.servers import FakeOllama, Reply
from tests.shell.test_repl import Shell, pipe, shell  # noqa: F401  (fixtures)

OSC52 = re.compile(rb"\x1b\]52;c;([A-Za-z0-9+/=]*)\x07")
HOSTILE = (
    "Run this:\n\n```bash\necho '\x1b[2J' \u202e; rm -rf ./build\n```\n\nThen \x1b]0;x\x07 done."
)


class TtyFile(io.StringIO):
    """A console's file that says it is a terminal, as a pty would."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty_shell(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> Shell:  # noqa: F811
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TMUX", raising=False)
    shell.console.file = TtyFile()
    return shell


def copied(screen: str) -> list[str]:
    return [base64.b64decode(m).decode() for m in OSC52.findall(screen.encode())]


async def test_copy_sends_the_raw_answer_and_its_code(
    tty_shell: Shell, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=[HOSTILE]))
    await tty_shell.ask("how?")
    await tty_shell.command("/copy")
    await tty_shell.command("/copy code")
    assert copied(tty_shell.screen) == [HOSTILE, "echo '\x1b[2J' \u202e; rm -rf ./build\n"]
    assert "sent the last answer to the terminal's clipboard" in tty_shell.text
    # The only escape sequences with raw text are the OSC 52 ones, whose payload is base64.
    assert "\x1b[2J" not in tty_shell.screen and "\x1b]0;" not in tty_shell.screen


async def test_copy_in_tmux_also_passes_through(
    tty_shell: Shell, ollama_env: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    await tty_shell.ask("hi")
    await tty_shell.command("/copy")
    assert "\x1bPtmux;\x1b\x1b]52;c;" in tty_shell.screen
    assert "set-clipboard on" in tty_shell.text


@pytest.mark.parametrize(("term", "says"), [("dumb", "TERM is dumb"), ("", "TERM is not set")])
async def test_no_copy_on_a_dumb_terminal(
    tty_shell: Shell, ollama_env: FakeOllama, monkeypatch: pytest.MonkeyPatch, term: str, says: str
) -> None:
    await tty_shell.ask("hi")
    monkeypatch.setenv("TERM", term)
    await tty_shell.command("/copy")
    assert f"cannot copy: {says}" in tty_shell.text
    assert "\x1b]52" not in tty_shell.screen


async def test_no_copy_when_the_output_is_not_a_terminal(
    shell: Shell,  # noqa: F811
    ollama_env: FakeOllama,
) -> None:
    await shell.ask("hi")
    await shell.command("/copy")
    assert "cannot copy: the output is not a terminal" in shell.text


async def test_copy_says_what_is_missing(tty_shell: Shell, ollama_env: FakeOllama) -> None:
    await tty_shell.command("/copy")
    assert "nothing to copy yet" in tty_shell.text
    ollama_env.queue(Reply(pieces=["no code here"]), Reply(pieces=["x" * (MAX_COPY_BYTES + 1)]))
    await tty_shell.ask("hi")
    await tty_shell.command("/copy code")
    assert "the last answer has no fenced code block" in tty_shell.text
    await tty_shell.command("/copy everything")
    assert "/copy code, its last code block" in tty_shell.text
    await tty_shell.ask("more")
    await tty_shell.command("/copy")
    assert "too long to copy through the terminal" in tty_shell.text
    assert "\x1b]52" not in tty_shell.screen


def test_the_payload_cannot_end_the_sequence() -> None:
    code = make_osc52("\x07\x1b\\\x9c" + "é" * 10)
    payload = code.removeprefix("\x1b]52;c;").removesuffix("\x07")
    assert re.fullmatch(r"[A-Za-z0-9+/=]*", payload)
    assert base64.b64decode(payload).decode() == "\x07\x1b\\\x9c" + "é" * 10


def test_copy_on_a_real_terminal(ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["Use:\n\n```\nls -la\n```\n"]))
    env = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color")
    env.pop("TMUX", None)
    command = cortan_command()
    child = pexpect.spawn(command[0], [*command[1:], "chat"], env=env, dimensions=(30, 100))
    try:
        child.expect("›".encode(), timeout=20)
        child.send(b"list files\r")
        child.expect(b"tok/s", timeout=20)
        child.expect("›".encode(), timeout=10)
        child.send(b"/copy code\r")
        child.expect(OSC52, timeout=10)
        assert base64.b64decode(child.match[1]) == b"ls -la\n"
        child.expect(b"terminal's clipboard", timeout=10)
        child.send(b"\x04")
        child.expect(pexpect.EOF, timeout=10)
    finally:
        child.close(force=True)
