"""``[commands] history = true``: the command that ran, in the shell's own history format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cortan.command.history import append_history, format_entry
from cortan.core.files import NotPrivateFile
from tests.conftest import CortanRunner
from tests.servers import FakeOllama, Reply


def test_formats() -> None:
    assert format_entry("bash", "ls -la", 5) == "ls -la\n"
    assert format_entry("zsh", "ls", 5) == "ls\n"
    assert format_entry("zsh", "ls", 5, extended=True) == ": 5:0;ls\n"
    assert format_entry("zsh", "a\nb", 5, extended=True) == ": 5:0;a\\\nb\n"
    assert format_entry("fish", "echo a\\b\nc", 7) == "- cmd: echo a\\\\b\\nc\n  when: 7\n"


def test_each_shell_gets_its_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    assert append_history("bash", "ls", env, 1) == tmp_path / ".bash_history"
    zsh = tmp_path / ".zsh_history"
    zsh.write_text(": 1:0;pwd\n")
    append_history("zsh", "ls", env, 2)
    assert zsh.read_text() == ": 1:0;pwd\n: 2:0;ls\n"
    fish = append_history("fish", "ls", env, 3)
    assert fish == tmp_path / "data" / "fish" / "fish_history"
    assert fish.read_text() == "- cmd: ls\n  when: 3\n"
    named = tmp_path / "custom"
    assert append_history("bash", "ls", {**env, "HISTFILE": str(named)}, 1) == named
    assert append_history("tcsh", "ls", env, 1) is None


def test_a_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "bashrc"
    target.write_text("original\n")
    (tmp_path / ".bash_history").symlink_to(target)
    with pytest.raises(NotPrivateFile):
        append_history("bash", "rm -rf ~", {"HOME": str(tmp_path)}, 1)
    assert target.read_text() == "original\n"


def test_a_command_that_ran_is_appended(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text('[commands]\nhistory = true\n[approval]\nallow_commands = ["true"]\n')
    ollama_env.queue(Reply(pieces=[json.dumps({"command": "true", "explanation": "nothing"})]))
    history = tmp_path / "hist"
    result = cortan.run(
        "cmd", "--yes", "do nothing", env={"HISTFILE": str(history), "SHELL": "/bin/bash"}
    )
    assert result.code == 0, result.stderr
    assert history.read_text() == "true\n"
    assert oct(os.stat(history).st_mode & 0o777) == "0o600"
