"""`cortan ask --tools` and `cortan tools`, as a user runs them: real processes, loopback servers.

With no terminal (the test's pipes) nothing outside `[approval] allow_tools` runs.
The approval prompts on a terminal are tested in tests/e2e/test_tool_prompts.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeCall, FakeOllama, FakeOpenAI, Reply

ROOT = Path(__file__).resolve().parents[2]


def calls(*made: FakeCall) -> Reply:
    return Reply(pieces=[], tool_calls=made, finish_reason="tool_calls")


def test_ask_with_tools_reads_a_file_and_stores_the_call(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text('[approval]\nallow_tools = ["read_file"]\n')
    note = tmp_path / "note.txt"
    note.write_text("\x1b[2Jhidden \x1b]0;title\x07 text\n")
    ollama_env.queue(calls(FakeCall("read_file", {"path": str(note)})), Reply(pieces=["Read."]))
    result = cortan.run("ask", "--tools", "read the note")
    assert result.code == 0, result.stderr
    assert result.stdout == "Read.\n"  # only the answer on stdout
    assert "cortan: tool: read_file" in result.stderr
    assert "\x1b" not in result.stderr  # the file's escapes are shown, not obeyed
    shown = json.loads(cortan.run("sessions", "export", "1", "--format", "json").stdout)
    answer = shown["messages"][-1]
    (call,) = answer["tool_calls"]
    assert (call["name"], call["status"], call["decided_by"]) == ("read_file", "ok", "allowlist")
    assert "hidden" in call["output"]
    text = cortan.run("sessions", "show", "1").stdout
    assert "(tool) read_file" in text
    assert "[tools: read_file]" in cortan.run("logs").stdout


def test_no_terminal_refuses_a_command(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    target = tmp_path / "made"
    openai_env.queue(
        calls(FakeCall("run_command", {"command": f"touch {target}"})), Reply(pieces=["No."])
    )
    result = cortan.run("ask", "--tools", "make a file")
    assert result.code == 0, result.stderr
    assert result.stdout == "No.\n"
    assert not target.exists()
    lines = [line for line in result.stderr.splitlines() if "run_command" in line]
    assert len(lines) == 2 and "run_command was not run" in lines[1]  # the call, why not: once
    log = json.loads(cortan.run("grants", "log", "--json").stdout)
    assert [(d["name"], d["by"], d["allowed"]) for d in log] == [
        ("run_command", "no-terminal", False)
    ]


def test_tools_are_off_unless_asked(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    assert cortan.run("ask", "hi").code == 0
    assert not ollama_env.chat_requests[-1].json.get("tools")
    assert cortan.run("ask", "--no-tools", "hi").code == 0
    assert not ollama_env.chat_requests[-1].json.get("tools")


def test_tools_on_in_the_config(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path
) -> None:
    config_file.write_text('[tools]\nenabled = true\nbuiltin = ["list_dir"]\n')
    assert cortan.run("ask", "hi").code == 0
    names = [t["function"]["name"] for t in ollama_env.chat_requests[-1].json["tools"]]
    assert names == ["list_dir"]


def test_tools_json_output(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.queue(calls(FakeCall("nope", {})), Reply(pieces=["ok"]))
    result = cortan.run("ask", "--tools", "--json", "hi")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["content"] == "ok"
    (call,) = data["tool_calls"]
    assert (call["name"], call["status"], call["decided_by"]) == ("nope", "error", None)
    assert "there is no tool named 'nope'" in call["output"]
    assert "tool_calls" not in json.loads(cortan.run("ask", "--json", "hi").stdout)


def test_cortan_tools_lists_builtins(cortan: type[CortanRunner]) -> None:
    result = cortan.run("tools")
    assert result.code == 0
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        "read_file",
        "list_dir",
        "search_text",
        "run_command",
    ]
    data = json.loads(cortan.run("tools", "--json").stdout)
    assert data["enabled"] is False
    assert {t["from"] for t in data["tools"]} == {"built-in"}


def test_cortan_tools_lists_an_mcp_server_and_names_one_that_fails(
    cortan: type[CortanRunner], config_file: Path
) -> None:
    pytest.importorskip("mcp")
    config_file.write_text(
        "[mcp.servers.t]\n"
        f"command = {json.dumps(sys.executable)}\n"
        'args = ["-m", "tests.servers.mcp_server"]\n'
        f"env = {{ PYTHONPATH = {json.dumps(str(ROOT))} }}\n"
        "[mcp.servers.gone]\n"
        'command = "/nonexistent/mcp-server"\n'
    )
    result = cortan.run("tools", timeout=60)
    assert result.code == 1
    assert "mcp__t__echo\tmcp\tSay the text back." in result.stdout
    assert_one_sentence(result.stderr)
    assert "MCP server 'gone'" in result.stderr


@pytest.mark.parametrize(
    "server",
    [
        '[mcp.servers.x]\nurl = "ftp://nowhere"\n',
        '[mcp.servers.x]\ncommand = "a"\nurl = "http://127.0.0.1:1/mcp"\n',
        '[mcp.servers."bad name!"]\ncommand = "a"\n',
        "[tools]\nmax_rounds = 0\n",
    ],
)
def test_bad_tool_config_is_one_sentence(
    cortan: type[CortanRunner], config_file: Path, server: str
) -> None:
    config_file.write_text(server)
    result = cortan.run("tools")
    assert result.code == 2
    assert_one_sentence(result.stderr)


def test_a_long_description_is_cut_with_an_ellipsis(cortan: type[CortanRunner]) -> None:
    """It was cut at 120 characters mid-word with nothing to say so (`…text fo`)."""
    result = cortan.run("tools")
    descriptions = [line.split("\t")[2] for line in result.stdout.splitlines()]
    assert all(len(d) <= 120 for d in descriptions)
    cut = [d for d in descriptions if len(d) == 120]
    assert cut and all(d.endswith("…") for d in cut)


def test_cortan_tools_with_hostile_servers_warns_in_sentences(
    cortan: type[CortanRunner], config_file: Path
) -> None:
    """Servers that print garbage on stdout, send requests nobody asked for, or list
    tools with hostile names: warnings made visible, no traceback, the rest listed."""
    pytest.importorskip("mcp")
    config_file.write_text(
        "".join(
            f"[mcp.servers.{name}]\n"
            f"command = {json.dumps(sys.executable)}\n"
            f'args = ["-m", "tests.servers.hostile_mcp", "--mode", "{mode}"]\n'
            f"env = {{ PYTHONPATH = {json.dumps(str(ROOT))} }}\n"
            for name, mode in (("g", "garbage"), ("c", "chatty"), ("b", "bad-tools"))
        )
    )
    result = cortan.run("tools", timeout=60)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    for name in ("mcp__g__echo", "mcp__c__echo", "mcp__b__echo"):
        assert f"{name}\tmcp\tSay the text back." in result.stdout
    assert "mcp__b__title\tmcp\t␛]0;pwned␛\\␛[2J<U+202E>evil\n" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("cortan: warning:")]
    assert len(warnings) == 2, result.stderr  # names it cannot have, a name listed twice
    assert "'rm<U+202E>elif'" in result.stderr
