"""``cortan shell-init``: the key binding, in a real bash, zsh and fish under tmux.

Each shell starts interactive in a private tmux server with only the snippet in its
rc file; words are typed, Alt-E pressed, and the line must then hold the command the
loopback model proposed, with nothing run: the marker file appears only once Enter
is pressed, which also proves the command was in the line buffer, not just printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CortanRunner
from tests.servers import FakeOllama, Reply

BIN = str(Path(sys.executable).parent)


class Tmux:
    """A private tmux server (its own socket) running one interactive shell."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.socket = f"cortan-test-{uuid.uuid4().hex[:12]}"
        self.env = env
        self._tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "110", "-y", "30",
            "-c", str(cwd), " ".join(command),
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self._tmux("send-keys", "-t", "t", *(("-l",) if literal else ()), *keys)

    def wait(self, fragment: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if fragment in screen:
                return screen
            time.sleep(0.05)  # polling a screen: there is no event to wait on
        raise AssertionError(f"never saw {fragment!r}; the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"],
            env=self.env,
            capture_output=True,
            timeout=10,
            check=False,
        )


def shell_command(shell: str, home: Path) -> list[str]:
    rc = home / f"rc.{shell}"
    if shell == "bash":
        rc.write_text("PS1='READY$ '\neval \"$(cortan shell-init bash)\"\n")
        return ["bash", "--noprofile", "--rcfile", str(rc), "-i"]
    if shell == "zsh":
        (home / ".zshrc").write_text(
            "bindkey -e\nPS1='READY$ '\neval \"$(cortan shell-init zsh)\"\n"
        )
        return ["zsh", "-i"]
    rc.write_text(
        "set -g fish_greeting\nfunction fish_prompt; echo -n 'READY$ '; end\n"
        "cortan shell-init fish | source\n"
    )
    return ["fish", "--no-config", "-i", "-C", f"'source {rc}'"]


@pytest.fixture
def shell_env(ollama_env: FakeOllama, isolated_env: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["ZDOTDIR"] = env["HOME"]
    env.pop("TMUX", None)
    return env


@pytest.fixture
def tmuxes() -> Iterator[list[Tmux]]:
    started: list[Tmux] = []
    yield started
    for tmux in started:
        tmux.close()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_key_leaves_the_command_in_the_line(
    shell: str,
    shell_env: dict[str, str],
    ollama_env: FakeOllama,
    tmp_path: Path,
    tmuxes: list[Tmux],
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (CI may lack it)")
    marker = tmp_path / "ran"
    answer = {"command": f"touch {marker}", "explanation": "makes a file"}
    ollama_env.queue(Reply(pieces=[json.dumps(answer)]))
    tmux = Tmux(shell_command(shell, Path(shell_env["HOME"])), shell_env, tmp_path)
    tmuxes.append(tmux)
    tmux.wait("READY$")
    tmux.keys("make a marker file", literal=True)
    tmux.wait("make a marker file")
    tmux.keys("M-e")
    screen = tmux.wait(f"READY$ touch {marker}")
    assert "make a marker file" not in screen.split("READY$")[-1]
    assert not marker.exists()  # in the buffer, not run
    sent = ollama_env.chat_requests[0].json
    assert sent["messages"][-1]["content"] == "make a marker file"
    assert shell in sent["messages"][0]["content"]
    tmux.keys("Enter")
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()  # Enter ran what the key left in the line


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_failure_is_said_below_the_line_which_stays(
    shell: str, shell_env: dict[str, str], tmp_path: Path, tmuxes: list[Tmux]
) -> None:
    """zsh and fish printed cortan's error glued to the end of the words being edited."""
    if shutil.which("tmux") is None or shutil.which(shell) is None:
        pytest.skip(f"tmux or {shell} is not installed (CI may lack them)")
    import socket

    with socket.socket() as dead:  # bound, not listening: connecting is refused at once
        dead.bind(("127.0.0.1", 0))
        env = {**shell_env, "OLLAMA_HOST": f"127.0.0.1:{dead.getsockname()[1]}"}
        tmux = Tmux(shell_command(shell, Path(env["HOME"])), env, tmp_path)
        tmuxes.append(tmux)
        tmux.wait("READY$")
        tmux.keys("list the files", literal=True)
        tmux.wait("list the files")
        tmux.keys("M-e")
        tmux.wait("cortan: error: cannot reach Ollama")
        time.sleep(0.5)  # the prompt drawn again, if it is
        lines = [line.rstrip() for line in tmux.screen().splitlines() if line.strip()]
    said = next(i for i, line in enumerate(lines) if "cortan: error:" in line)
    assert lines[said].startswith("cortan: error: cannot reach Ollama"), lines
    assert lines[said - 1].endswith("READY$ list the files"), lines
    assert lines[-1] == "READY$ list the files", lines  # the words kept, to edit


def test_the_snippets(cortan: type[CortanRunner]) -> None:
    for shell, needle in (("bash", "bind -x"), ("zsh", "zle -N"), ("fish", "commandline -r")):
        result = cortan.run("shell-init", shell)
        assert result.code == 0
        assert needle in result.stdout and "cortan cmd --print --shell" in result.stdout
        assert "\\ee" in result.stdout
    result = cortan.run("shell-init", "bash", "--key", "\\C-g")
    assert "bind -x '\"\\C-g\": __cortan_cmd'" in result.stdout


def test_unknown_shell_and_bad_key(cortan: type[CortanRunner]) -> None:
    for args in (("tcsh",), ("bash", "--key", "'; rm -rf ~'"), ("bash", "--key", "")):
        result = cortan.run("shell-init", *args)
        assert result.code == 2, args
        assert "Traceback" not in result.stderr
