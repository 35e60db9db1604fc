"""``--role``, ``cortan roles`` and ``-f`` end to end: the installed command, real files."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from cortan.config.load import load_settings
from cortan.config.roles import get_role
from cortan.core.errors import InputError
from cortan.engine.attachments import read_attachment
from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama


def messages(server: FakeOllama, index: int = -1) -> list[dict[str, str]]:
    found = server.chat_requests[index].json["messages"]
    assert isinstance(found, list)
    return found


# -- roles ------------------------------------------------------------------------------


def test_role_shell_sends_its_system_prompt(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "--role", "shell", "list big files")
    assert result.code == 0, result.stderr
    shell = get_role(load_settings(), "shell")
    assert messages(ollama_env) == [
        {"role": "system", "content": shell.system},
        {"role": "user", "content": "list big files"},
    ]
    assert shell.system.startswith("Answer with exactly one shell command for ")


def test_system_flag_wins_over_the_role(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    assert cortan.run("ask", "--role", "code", "-s", "Be terse.", "x").code == 0
    assert messages(ollama_env)[0] == {"role": "system", "content": "Be terse."}


def test_configured_role_brings_model_and_temperature(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path
) -> None:
    config_file.write_text(
        '[roles.reviewer]\nsystem = "Review hard."\nmodel = "ollama:qwen2.5-coder:7b"\n'
        "temperature = 0.2\n\n"
        '[roles.shell]\nmodel = "ollama:qwen2.5-coder:7b"\n'
    )
    assert cortan.run("ask", "--role", "reviewer", "x").code == 0
    body = ollama_env.chat_requests[-1].json
    assert body["model"] == "qwen2.5-coder:7b"
    assert body["options"]["temperature"] == 0.2
    assert body["messages"][0] == {"role": "system", "content": "Review hard."}
    # A built-in role changed in config keeps its prompt.
    assert cortan.run("ask", "--role", "shell", "-m", "llama3.2:latest", "x").code == 0
    body = ollama_env.chat_requests[-1].json
    assert body["model"] == "llama3.2:latest"  # -m wins over the role's model
    assert body["messages"][0]["content"].startswith("Answer with exactly one shell command")


def test_unknown_role_is_a_usage_error_with_a_suggestion(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "--role", "shel", "x")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "no role named 'shel': did you mean 'shell'?" in result.stderr
    assert ollama_env.chat_requests == []


def test_role_without_system_prompt_is_a_config_error(
    cortan: type[CortanRunner], config_file: Path
) -> None:
    config_file.write_text('[roles.mine]\nmodel = "x"\n')
    result = cortan.run("roles")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "role 'mine' has no system prompt" in result.stderr


def test_roles_lists_builtin_and_configured(cortan: type[CortanRunner], config_file: Path) -> None:
    config_file.write_text(
        '[roles.haiku]\nsystem = "Answer in a haiku.\\nNo title."\nmodel = "fast"\n'
    )
    result = cortan.run("roles")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "model", "system", "prompt"]
    assert [line.split()[0] for line in lines[1:]] == [
        "code",
        "explain",
        "haiku",
        "review",
        "shell",
    ]
    assert "haiku    fast       Answer in a haiku." in result.stdout
    assert "No title." not in result.stdout
    listed = json.loads(cortan.run("roles", "--json").stdout)
    assert {r["name"]: r["builtin"] for r in listed}["haiku"] is False


# -- files ------------------------------------------------------------------------------


def test_files_are_attached_with_their_names(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    notes, todo = tmp_path / "notes.txt", tmp_path / "todo.md"
    notes.write_text("first note\n")
    todo.write_text("- a ``` fence\n")
    result = cortan.run("ask", "-f", str(notes), "--file", str(todo), "summarise")
    assert result.code == 0, result.stderr
    assert messages(ollama_env)[-1]["content"] == (
        f"File {notes}:\n```\nfirst note\n```\n\n"
        f"File {todo}:\n````\n- a ``` fence\n````\n\n"
        "summarise"
    )


def test_files_follow_piped_input(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    guide = tmp_path / "guide.txt"
    guide.write_text("be kind\n")
    result = cortan.run("ask", "-f", str(guide), "review", input="diff\n")
    assert result.code == 0, result.stderr
    assert messages(ollama_env)[-1]["content"] == (
        f"Input from stdin:\n```\ndiff\n```\n\nFile {guide}:\n```\nbe kind\n```\n\nreview"
    )


def test_a_file_alone_is_the_prompt(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    question = tmp_path / "question.txt"
    question.write_text("What is 2+2?\n")
    result = cortan.run("ask", "-f", str(question), stdin=subprocess.DEVNULL)
    assert result.code == 0, result.stderr
    assert messages(ollama_env)[-1]["content"] == "What is 2+2?\n"


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda p: None, "cannot attach {}: there is no such file"),
        (lambda p: p.mkdir(), "cannot attach {}: it is a folder"),
        (lambda p: p.write_bytes(b"\x7fELF\x00\x01\x02"), "file {} looks like binary data"),
        (lambda p: p.write_bytes(b"caf\xe9"), "file {} is not valid UTF-8 text"),
        (lambda p: p.write_bytes(b"a" * 5000), "cannot attach {}: it is 4.88 KiB, over the 4.88"),
    ],
    ids=["missing", "folder", "binary", "latin-1", "too-large"],
)
def test_bad_files_are_refused_before_anything_is_sent(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    tmp_path: Path,
    setup: Callable[[Path], object],
    fragment: str,
) -> None:
    path = tmp_path / "f"
    setup(path)
    result = cortan.run("ask", "-f", str(path), "x", env={"CORTAN_MAX_INPUT_BYTES": "4999"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert fragment.format(path) in result.stderr
    assert ollama_env.chat_requests == []


def test_files_together_over_the_limit(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a" * 600)
    b.write_text("b" * 600)
    result = cortan.run(
        "ask", "-f", str(a), "-f", str(b), "x", env={"CORTAN_MAX_INPUT_BYTES": "1000"}
    )
    assert result.code == 1
    assert_one_sentence(result.stderr)
    limit = "the 1000 bytes limit (setting max_input_bytes)"
    assert f"cannot attach {b}: with the rest of the input it is over {limit}" in result.stderr
    assert ollama_env.chat_requests == []


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_read_only_up_to_the_limit() -> None:
    with pytest.raises(InputError, match="cannot attach /dev/zero: it is larger than the 1 MiB"):
        read_attachment(Path("/dev/zero"), max_bytes=1 << 20)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_can_be_attached(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as end:  # waits for the reader to open its end
            end.write(b"from a pipe\n")

    writer = threading.Thread(target=write)
    writer.start()
    attachment = read_attachment(fifo, max_bytes=100, label="diff")
    writer.join(10)
    assert (attachment.label, attachment.data) == ("diff", b"from a pipe\n")
