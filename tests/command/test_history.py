"""``[commands] history = true``: the command that ran, in the shell's own history format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cortan.command.history import HistoryRefused, append_history, format_entry
from cortan.core.files import NotPrivateFile
from tests.conftest import CortanRunner
from tests.servers import FakeOllama, Reply


def test_formats() -> None:
    assert format_entry("bash", "ls -la", 5) == b"ls -la\n"
    assert format_entry("bash", "ls -la", 5, extended=True) == b"#5\nls -la\n"
    assert format_entry("zsh", "ls", 5) == b"ls\n"
    assert format_entry("zsh", "ls", 5, extended=True) == b": 5:0;ls\n"
    assert format_entry("zsh", "a\nb", 5, extended=True) == b": 5:0;a\\\nb\n"
    assert format_entry("fish", "echo a\\b\nc", 7) == b"- cmd: echo a\\\\b\\nc\n  when: 7\n"


def test_zsh_gets_its_tokens_metafied() -> None:
    # U+2014 is E2 80 94; 0x94 is zsh's Inang token: written raw, `—` comes back as
    # something else. zsh writes Meta (0x83), then the byte xor 32.
    assert format_entry("zsh", "echo \u2014", 5) == b"echo \xe2\x80\x83\xb4\n"
    assert format_entry("zsh", "echo \u0103", 5) == b"echo \xc4\x83\xa3\n"  # 0x83 is Meta
    assert format_entry("zsh", "echo caf\u00e9", 5) == "echo caf\u00e9\n".encode()


def test_zsh_plain_lines_that_read_as_extended_are_written_extended() -> None:
    # `: 1:0;touch x` written plain would come back as `touch x`
    assert format_entry("zsh", ": 1:0;touch x", 5) == b": 5:0;: 1:0;touch x\n"


@pytest.mark.parametrize(
    ("shell", "command", "extended"),
    [
        ("bash", "ls\nrm notes", False),  # a plain bash file: two entries
        ("bash", "ls\n#1700000000\nrm notes", True),  # a line read as a timestamp
        ("zsh", "echo a \\", False),  # zsh joins the next entry to it
        ("zsh", "echo a \\", True),
    ],
)
def test_what_a_shell_would_read_back_otherwise_is_refused(
    shell: str, command: str, extended: bool
) -> None:
    with pytest.raises(HistoryRefused):
        format_entry(shell, command, 5, extended=extended)


def test_bash_reads_back_exactly_what_was_appended(tmp_path: Path) -> None:
    history = tmp_path / "hist"
    history.write_text("#1700000000\necho one\n")
    command = "for i in 1 2; do\n  echo $i\ndone"
    append_history("bash", command, {"HISTFILE": str(history)}, 1700000001)
    append_history("bash", "echo two", {"HISTFILE": str(history)}, 1700000002)
    script = (
        'HISTTIMEFORMAT="%s "; shopt -s lithist cmdhist; HISTFILE="$1"; '
        "history -c; history -r; history"
    )
    read = subprocess.run(
        ["bash", "--norc", "--noprofile", "-ic", script, "bash", str(history)],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    assert read.split("\n") == [
        "    1  1700000000 echo one",
        f"    2  1700000001 {command.split(chr(10))[0]}",
        "  echo $i",
        "done",
        "    3  1700000002 echo two",
        "",
    ]


#: An em dash and accents; "\u00c3" and "\u0103" hold the byte 0x83, zsh's Meta, which it
#: reads back as a marker for the next byte unless written metafied.
HOSTILE_BUT_FINE = [
    "echo one", "echo \u2014 \u00c3 \u0103 \u00fcn\u00ef", "for i in 1 2; do\n  echo $i\ndone"
]  # fmt: skip


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_reads_back_exactly_what_was_appended(tmp_path: Path) -> None:
    """zsh keeps its token bytes metafied: an em dash written raw came back as another
    character, and a newline unescaped split the entry in two."""
    history = tmp_path / "zsh_history"
    for command in HOSTILE_BUT_FINE:
        append_history("zsh", command, {"HISTFILE": str(history)}, 1700000001)
    script = 'fc -R "$1"; print -rN -- "${history[1]}" "${history[2]}" "${history[3]}"'
    read = subprocess.run(
        ["zsh", "-f", "-c", f"HISTSIZE=100; {script}", "zsh", str(history)],
        capture_output=True, check=True, stdin=subprocess.DEVNULL,
    ).stdout  # fmt: skip
    assert read.decode().split("\0")[:-1] == HOSTILE_BUT_FINE


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_reads_back_exactly_what_was_appended(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path), "HOME": str(tmp_path)}  # --no-config keeps none
    for command in [*HOSTILE_BUT_FINE[:2], "for i in 1 2\n  echo $i\nend", 'echo "a\\b"']:
        append_history("fish", command, env, 1700000001)
    read = subprocess.run(
        ["fish", "-c", "history --null --reverse | cat"],
        capture_output=True, check=True, stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    ).stdout  # fmt: skip
    assert read.decode().split("\0")[:-1] == [
        *HOSTILE_BUT_FINE[:2], "for i in 1 2\n  echo $i\nend", 'echo "a\\b"'
    ]  # fmt: skip


def test_a_plain_bash_file_keeps_no_command_of_several_lines(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text(
        '[commands]\nhistory = true\n[approval]\nallow_commands = ["true\\nrm -f gone"]\n'
    )
    ollama_env.queue(
        Reply(pieces=[json.dumps({"command": "true\nrm -f gone", "explanation": "two lines"})])
    )
    history = tmp_path / "hist"
    history.write_text("ls\n")
    result = cortan.run(
        "cmd", "--yes", "do nothing", env={"HISTFILE": str(history), "SHELL": "/bin/bash"}
    )
    assert result.code == 0, result.stderr
    assert "not added to the shell history: bash's history file holds one line" in result.stderr
    assert "Traceback" not in result.stderr
    assert history.read_text() == "ls\n"  # `rm -f gone` is no entry to recall on its own


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
