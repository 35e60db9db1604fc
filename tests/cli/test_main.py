"""The command line as a whole: global flags wherever they are typed."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from cortan.cli.main import COMMANDS, with_default_command
from tests.conftest import CortanRunner, assert_one_sentence, cortan_command
from tests.servers import FakeOllama


def user_message(server: FakeOllama) -> str:
    return str(server.chat_requests[-1].json["messages"][-1]["content"])


@pytest.mark.parametrize(
    "args",
    [
        ("--debug", "ask", "hi"),
        ("ask", "--debug", "hi"),
        ("ask", "hi", "--debug"),
        ("ask", "--no-color", "--debug", "-m", "ollama:llama3.2:latest", "hi"),
    ],
)
def test_global_flags_before_or_after_the_command(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    """`cortan ask --debug` used to fail with "No such option" (issue 21)."""
    result = cortan.run(*args)
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert "DEBUG" in result.stderr
    assert user_message(ollama_env) == "hi"


@pytest.mark.parametrize(
    "args",
    [("sessions", "list", "--no-color"), ("keys", "list", "--no-color"), ("roles", "--debug")],
)
def test_global_flags_after_a_command_of_a_group(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    result = cortan.run(*args)
    assert "No such option" not in result.stderr
    assert result.code in (0, 1), result.stderr  # sessions list with no store says so: 1


@pytest.mark.parametrize(
    ("args", "prompt", "system"),
    [
        (("ask", "-s", "--debug", "hi"), "hi", "--debug"),  # the value of -s, not a flag
        (("ask", "--system=--debug", "hi"), "hi", "--debug"),
        (("ask", "--", "--debug"), "--debug", None),  # after --, words of the prompt
    ],
)
def test_a_global_flag_spelt_as_a_value_stays_a_value(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    args: tuple[str, ...],
    prompt: str,
    system: str | None,
) -> None:
    result = cortan.run(*args)
    assert result.code == 0, result.stderr
    assert "DEBUG" not in result.stderr
    messages = ollama_env.chat_requests[-1].json["messages"]
    assert messages[-1]["content"] == prompt
    assert (messages[0]["content"] if messages[0]["role"] == "system" else None) == system


@pytest.mark.parametrize(
    "args", [("models",), ("keys", "list"), ("doctor",), ("models", "-p", "ollama")]
)
def test_tables_in_a_pipe_carry_no_padding(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    """Rows piped out end where their text ends (issue 21: padded to ~200 columns)."""
    result = cortan.run(*args)
    assert result.code in (0, 1), result.stderr  # doctor: 1 when a provider needs a key
    lines = result.stdout.splitlines()
    assert lines
    assert [line for line in lines if line != line.rstrip()] == []


def test_models_of_a_provider_with_no_alias_there_prints_no_alias_table(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("models", "-p", "ollama", env={"CORTAN_DEFAULT_MODEL": "openai:gpt-4o"})
    assert result.code == 0, result.stderr
    assert "llama3.2:latest" in result.stdout
    assert "alias" not in result.stdout
    assert not result.stdout.endswith("\n\n")


def every_command() -> list[tuple[str, ...]]:
    """Each command and each command of a group, as typed: ("ask",), ("sessions", "list")."""
    found: list[tuple[str, ...]] = [()]
    for name, (module, attribute, is_group) in COMMANDS.items():
        found.append((name,))
        if is_group:
            group = getattr(importlib.import_module(module), attribute)
            for info in group.registered_commands:
                assert info.name or info.callback is not None
                found.append((name, info.name or info.callback.__name__.replace("_", "-")))
    return found


@pytest.mark.parametrize("command", every_command(), ids=lambda c: " ".join(c) or "cortan")
def test_help_names_values_in_words(cortan: type[CortanRunner], command: tuple[str, ...]) -> None:
    """`-m, --model MODEL` and `NAME`, not Typer's `<str>`, `<list[str]>`, `<int range>` or
    `{NAME}` (issue 21), in every command's usage line, arguments and options."""
    result = cortan.run(*command, "--help")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("Usage: cortan"), result.stdout
    assert not re.search(r"<[a-z]", result.stdout), result.stdout
    usage = result.stdout.split("\n\n", 1)[0]
    assert not re.search(r"\{[A-Za-z_]+\}", usage), usage


def test_top_level_help_says_a_question_needs_no_command(cortan: type[CortanRunner]) -> None:
    """`cortan "question"`, `cortan -m MODEL` and bare `cortan` work (docs/scripting.md), but
    `cortan --help` listed only commands: a newcomer typed `cortan ask` for every question."""
    result = cortan.run("--help")
    assert result.code == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert 'cortan "QUESTION" ask it, as cortan ask "QUESTION" does' in lines
    assert "cortan -m MODEL [QUESTION] ask it, or chat, with that model" in lines
    assert "cortan open the chat shell (no terminal: ask what is piped)" in lines


def test_no_command_without_a_terminal_is_ask(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """As docs/scripting.md says: `echo question | cortan > file` asks the piped text."""
    result = cortan.run(input="What is 2+2?\n")
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert user_message(ollama_env) == "What is 2+2?\n"


@pytest.mark.parametrize(
    "args",
    [
        ("What is 2+2?",),
        ("--debug", "What is 2+2?"),
        ("-m", "ollama:llama3.2:latest", "What is 2+2?"),
        ("-s", "be brief", "--no-stdin", "What is 2+2?"),
        ("hello",),
    ],
)
def test_a_question_without_a_command_is_asked(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    """`cortan "question"` and `cortan -m X "question"` ask, as llm and aichat do (issue 21)."""
    result = cortan.run(*args)
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert user_message(ollama_env) == args[-1]


@pytest.mark.parametrize(
    "args", [("-r", "shell", "list files"), ("ask", "-r", "shell", "list files")]
)
def test_a_role_by_its_short_flag_without_a_command_is_asked(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    """docs/repl.md: chat's options work on `cortan` alone, and chat spells --role `-r`;
    `cortan -r shell "…"` asked, so `ask` said there was no such option -r."""
    result = cortan.run(*args)
    assert result.code == 0, result.stderr
    messages = ollama_env.chat_requests[-1].json["messages"]
    assert messages[0]["role"] == "system" and "shell command" in messages[0]["content"]
    assert messages[-1]["content"] == "list files"


@pytest.mark.parametrize("word", ["sesions", "model", "ask-"])
def test_a_misspelt_command_is_never_sent_to_a_model(
    cortan: type[CortanRunner], ollama_env: FakeOllama, word: str
) -> None:
    result = cortan.run(word)
    assert result.code == 2
    assert "no such command" in result.stderr and "Did you mean" in result.stderr
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize(
    ("args", "same_as"),
    [(("help",), ("--help",)), (("help", "ask"), ("ask", "--help")),
     (("help", "sessions"), ("sessions", "--help")), (("version",), ("--version",)),
     (("help", "models", "pull"), ("models", "pull", "--help"))],
)  # fmt: skip
def test_help_and_version_as_words_are_the_flags(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    args: tuple[str, ...],
    same_as: tuple[str, ...],
) -> None:
    """`cortan help` (as git, go and ollama take it) was sent to the model as a question,
    and `cortan version` refused as a misspelling of `sessions`."""
    result = cortan.run(*args)
    assert (result.code, result.stdout) == (0, cortan.run(*same_as).stdout)
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize("flag", ["--install-completion", "--show-completion"])
def test_typers_completion_flags_name_the_completion_command(
    cortan: type[CortanRunner], ollama_env: FakeOllama, flag: str
) -> None:
    """Typer users try `--install-completion` first: it was refused as an option of
    `ask` with `cortan ask --help` to read, which says nothing of completion."""
    result = cortan.run(flag)
    assert (result.code, result.stdout) == (2, "")
    assert_one_sentence(result.stderr)
    assert "`cortan completion bash|zsh|fish`" in result.stderr
    assert ollama_env.chat_requests == []


def test_version_json_for_scripts_and_other_words_refused_by_name(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """`cortan version --json` was refused as "no such command 'version'. Did you mean
    'sessions'?", naming a command the user had not typed."""
    result = cortan.run("version", "--json")
    assert result.code == 0
    assert json.loads(result.stdout)["version"] == cortan.run("--version").stdout.split()[1]
    refused = cortan.run("version", "--short")
    assert (refused.code, refused.stdout) == (2, "")
    assert (
        refused.stderr.strip()
        == "cortan: error: `cortan version` takes only --json (got '--short')"
    )
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize("args", [("help", "sesions"), ("help", "sessions", "lst")])
def test_help_on_a_misspelt_command_is_never_sent_to_a_model(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    """`cortan help sesions` went to the model as the question "help sesions"."""
    result = cortan.run(*args)
    assert result.code == 2
    assert "no such command" in result.stderr
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize(
    ("args", "instead"),
    [
        (("run", "llama3.2"), "`cortan chat -m llama3.2` chats with it"),
        (("pull", "qwen3:8b"), "`cortan models pull qwen3:8b` downloads it"),
        (("run", "x;rm"), "`cortan chat -m 'x;rm'`"),  # quoted for pasting
    ],
)
def test_ollamas_run_and_pull_say_what_cortan_takes(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...], instead: str
) -> None:
    """An ollama user's first words: sent to the model as the question "run llama3.2",
    they got an answer about running something."""
    result = cortan.run(*args)
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert instead in result.stderr and "cortan ask '" in result.stderr
    assert ollama_env.chat_requests == []


def test_run_and_pull_with_more_words_are_still_questions(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    assert cortan.run("run", "the", "tests").code == 0
    assert user_message(ollama_env) == "run the tests"


def test_help_with_more_words_is_still_a_question(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    assert cortan.run("help", "me", "name", "a", "cat").code == 0
    assert user_message(ollama_env) == "help me name a cat"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], []),
        (["--debug"], ["--debug"]),
        (["--version"], ["--version"]),
        (["-h"], ["-h"]),
        (["sessions", "list"], ["sessions", "list"]),
        (["why", "not"], ["ask", "why", "not"]),
        (["--no-color", "a question"], ["--no-color", "ask", "a question"]),
        (["-m", "x", "q"], ["ask", "-m", "x", "q"]),
        (["-m", "x"], ["ask", "-m", "x"]),  # no terminal here: the piped text is asked
        (["-m", "x", "--", "-q"], ["ask", "-m", "x", "--", "-q"]),
        (["chats"], ["chats"]),
    ],
)
def test_the_default_command(argv: list[str], expected: list[str]) -> None:
    assert with_default_command(argv) == expected


@pytest.mark.parametrize(
    ("args", "help_line"),
    [
        (("ask", "--max-tokens"), "`cortan ask --help`"),
        (("--debug", "chat", "--session"), "`cortan chat --help`"),
        (("sessions", "rename", "--to"), "`cortan sessions rename --help`"),
    ],
)
def test_a_usage_error_names_the_help_of_the_command_typed(
    cortan: type[CortanRunner], args: tuple[str, ...], help_line: str
) -> None:
    """Typer's parser raises some errors without their command (an option missing its
    value): the sentence named `cortan --help`, not the command's own help."""
    result = cortan.run(*args)
    assert result.code == 2
    assert result.stderr.startswith("cortan: error: ") and help_line in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("group", "command"),
    [("sessions", "list"), ("keys", "list"), ("cache", "stats"), ("config", "show"),
     ("logs", None), ("grants", "list")],
)  # fmt: skip
def test_a_group_alone_lists_what_it_holds(
    cortan: type[CortanRunner], ollama_env: FakeOllama, group: str, command: str | None
) -> None:
    """`cortan sessions` lists, as `cortan logs` does and `llm logs` and `llm keys` do: it
    printed its help and exited 2 (found by a newcomer's walk through the docs)."""
    assert cortan.run("ask", "--no-stdin", "hi").code == 0  # something stored to list
    alone = cortan.run(group)
    assert alone.code == 0, alone.stderr
    assert "Usage:" not in alone.stdout
    if command is not None:
        assert alone.stdout == cortan.run(group, command).stdout


@pytest.mark.parametrize(
    ("group", "command", "options"),
    [("sessions", "list", ("-n", "1")), ("sessions", "list", ("--json",)),
     ("keys", "list", ("--json",)), ("cache", "stats", ("--json",)),
     ("config", "show", ("--json",)), ("grants", "list", ("--json",))],
)  # fmt: skip
def test_a_group_alone_takes_the_options_of_what_it_runs(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    group: str,
    command: str,
    options: tuple[str, ...],
) -> None:
    """`cortan sessions --json` is `cortan sessions list --json`, as `cortan logs -n 3`
    and `cortan models --json` work: it was "no such option", exit 2, though the docs
    say `cortan grants` (or `grants list`, `--json`)."""
    assert cortan.run("ask", "--no-stdin", "hi").code == 0  # something stored to list
    alone = cortan.run(group, *options)
    assert alone.code == 0, alone.stderr
    assert alone.stdout == cortan.run(group, command, *options).stdout
    assert cortan.run(group, "--help").stdout.startswith(f"Usage: cortan {group} [OPTIONS]")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        ("sessions", "list"),
        ("sessions", "export", "1"),
        ("logs",),
        ("config", "show"),
        ("roles",),
        ("--help",),
        ("sessions", "--help"),
        ("--version",),
    ],
    ids=" ".join,
)
def test_output_stdout_cannot_take_is_one_sentence(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    # Before: an internal error (a listing), or a traceback (--help, --version).
    assert cortan.run("ask", "--no-stdin", "hi").code == 0
    with open("/dev/full", "w") as full:  # every write: No space left on device
        done = subprocess.run(
            [*cortan_command(), *args],
            stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE, timeout=30, text=True,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert_one_sentence(done.stderr)
    assert done.stderr == "cortan: error: cannot write the output: no space left on device\n"
