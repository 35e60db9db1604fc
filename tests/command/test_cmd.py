"""``cortan cmd`` without a terminal: the command on stdout, never run unless allowed.

Every run here has stdin /dev/null (no terminal): a marker file proves that nothing
ran; ``--yes`` runs only what ``[approval] allow_commands`` allows.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, Reply


def proposal(command: str, explanation: str = "does it") -> Reply:
    return Reply(pieces=[json.dumps({"command": command, "explanation": explanation})])


def test_no_terminal_prints_the_command_and_runs_nothing(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    ollama_env.queue(proposal(f"touch {marker}", "makes a file"))
    result = cortan.run("cmd", "make", "a", "file")
    assert result.code == 0, result.stderr
    assert result.stdout == f"touch {marker}\n"
    assert "makes a file" in result.stderr
    assert not marker.exists()
    sent = ollama_env.chat_requests[0].json
    assert sent["format"]["required"] == ["command", "explanation"]
    system = sent["messages"][0]["content"]
    assert "bash" in system or "sh" in system
    assert str(Path.cwd()) in system
    assert sent["messages"][-1]["content"] == "make a file"


def test_print_prints_only_the_command(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(proposal("ls -la build", "lists build"))
    result = cortan.run("cmd", "--print", "list")
    assert result.code == 0
    assert result.stdout == "ls -la build\n"
    assert result.stderr == ""


def test_print_still_says_the_risks(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    """The key bindings put the command in the line editor: a lookalike letter there went
    unwarned, where the dialogue would have said it."""
    ollama_env.queue(proposal("git clone https://g\u0456thub.com/x", "clones x"))
    result = cortan.run("cmd", "--print", "clone x")
    assert result.code == 0
    assert result.stdout == "git clone https://g\u0456thub.com/x\n"
    assert "risky:" in result.stderr and "clones x" not in result.stderr


def test_risks_are_said_on_stderr(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(proposal("sudo rm -r /tmp/x"))
    result = cortan.run("cmd", "clean")
    assert result.code == 0
    assert "risky: deletes files" in result.stderr
    assert "risky: runs as root" in result.stderr


def test_yes_without_allowlist_runs_nothing(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    ollama_env.queue(proposal(f"touch {marker}"))
    result = cortan.run("cmd", "--yes", "make a file")
    assert result.code == 5
    assert result.stdout == ""
    assert_one_sentence(result.stderr)
    assert "no terminal to ask on" in result.stderr
    assert not marker.exists()
    log = cortan.run("grants", "log", "--json")
    assert json.loads(log.stdout)[-1]["by"] == "no-terminal"


def test_yes_with_allowlist_runs_it_and_exits_with_its_status(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text('[approval]\nallow_commands = ["ls *", "false"]\n')
    ollama_env.queue(proposal(f"ls {tmp_path}"))
    (tmp_path / "present.txt").write_text("")
    result = cortan.run("cmd", "--yes", "list")
    assert result.code == 0, result.stderr
    assert "present.txt" in result.stdout
    ollama_env.queue(proposal("false"))
    failed = cortan.run("cmd", "--yes", "fail")
    assert failed.code == 1
    rows = json.loads(cortan.run("grants", "log", "--json").stdout)
    assert [(r["by"], r["status"]) for r in rows[-2:]] == [("allowlist", 0), ("allowlist", 1)]


def test_allowlist_never_stretches_over_an_operator(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    config_file.write_text('[approval]\nallow_commands = ["ls *"]\n')
    ollama_env.queue(proposal(f"ls; touch {marker}"))
    result = cortan.run("cmd", "--yes", "list")
    assert result.code == 5
    assert not marker.exists()


def test_hard_denial_prints_nothing(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path
) -> None:
    config_file.write_text('[approval]\nallow_commands = ["rm *"]\n')
    for flags in ((), ("--yes",), ("--print",)):
        ollama_env.queue(proposal("rm -rf ~"))
        result = cortan.run("cmd", *flags, "clean up")
        assert result.code == 5, flags
        assert result.stdout == ""
        assert_one_sentence(result.stderr)
        assert "cortan will not run this" in result.stderr


def test_hostile_command_is_printed_visible(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(proposal("ls\u200b \x1b[8mhidden\x1b[0m", "lists\x1b[2J"))
    result = cortan.run("cmd", "list")
    assert result.code == 0
    assert "\x1b" not in result.stdout and "\u200b" not in result.stdout
    assert "<U+200B>" in result.stdout
    assert "\x1b" not in result.stderr
    assert "not visible" in result.stderr


def test_not_json_twice_is_exit_3(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["ls -la"]), Reply(pieces=["just ls"]))
    result = cortan.run("cmd", "list")
    assert result.code == 3
    assert result.stdout == ""
    assert_one_sentence(result.stderr)


def test_not_json_then_repaired(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["ls -la"]), proposal("ls -la"))
    result = cortan.run("cmd", "list")
    assert result.code == 0
    assert result.stdout == "ls -la\n"


def test_empty_command_says_why(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(proposal("  ", "there is no such tool"))
    result = cortan.run("cmd", "teleport me")
    assert result.code == 1
    assert result.stdout == ""
    assert_one_sentence(result.stderr)
    assert "no command: there is no such tool" in result.stderr


def test_usage_errors(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    for args, says in (
        ((), "say what the command should do"),
        (("  ",), "say what the command should do"),
        (("--yes", "--print", "x"), "give one"),
        (("-m", "", "x"), "--model is empty"),
    ):
        result = cortan.run("cmd", *args)
        assert result.code == 2, args
        assert_one_sentence(result.stderr)
        assert says in result.stderr


def test_the_exchange_is_stored(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(proposal("ls"))
    assert cortan.run("cmd", "list").code == 0
    listed = cortan.run("sessions", "list", "--json")
    assert len(json.loads(listed.stdout)) == 1
    ollama_env.queue(proposal("ls"))
    assert cortan.run("cmd", "--no-log", "list").code == 0
    assert len(json.loads(cortan.run("sessions", "list", "--json").stdout)) == 1
