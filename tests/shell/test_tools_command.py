"""`/tools` in the REPL: the state and the list, on and off, and a refused word.

Here the REPL reads a pipe: there is no terminal to ask on, so a tool call runs only
when `[approval] allow_tools` names it (the prompts are tested on a pty in tests/e2e).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from cortan.core.events import ChatFinished
from tests.servers import FakeCall, FakeOllama, Reply
from tests.shell.test_repl import Shell, start_shell


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


async def test_tools_lists_switches_and_refuses_a_bad_word(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> None:
    shell: Shell = start_shell(pipe, None)
    try:
        await shell.command("/tools")
        assert "tools: off (/tools on)" in shell.text
        assert "read_file" in shell.text and "run_command" in shell.text
        screen = shell.screen.splitlines()
        start = screen.index("tools: off (/tools on)") + 1
        listing = screen[start : start + 5]  # one line per tool, none wrapped onto two
        assert [line.split()[0] for line in listing[:4]] == [
            "read_file", "list_dir", "search_text", "run_command",
        ], listing  # fmt: skip
        assert "unknown command /__done" in listing[4], listing  # what comes next
        await shell.command("/tools sideways")
        assert "/tools takes on or off" in shell.text
        await shell.command("/tools on")
        assert "no terminal to ask on" in shell.text
        target = isolated_env / "made"
        ollama_env.queue(
            Reply(pieces=[], tool_calls=[FakeCall("run_command", {"command": f"touch {target}"})]),
            Reply(pieces=["Could not."]),
        )
        assert isinstance(await shell.ask("make a file"), ChatFinished)
        assert not target.exists()
        assert "tool: run_command" in shell.text
        assert ollama_env.chat_requests[-2].json["tools"]
        await shell.command("/tools off")
        await shell.ask("plain")
        assert not ollama_env.chat_requests[-1].json.get("tools")
        await shell.exit()
    finally:
        await shell.repl.services.aclose()


@pytest.fixture
def good_and_bad_mcp(config_file: Path) -> Path:
    """Two MCP servers configured: one that starts, one that crashes at once."""
    pytest.importorskip("mcp")
    root = Path(__file__).resolve().parents[2]
    server = f'command = "{sys.executable}"\nenv = {{ PYTHONPATH = "{root}" }}\n'
    config_file.write_text(
        f'[mcp.servers.good]\n{server}args = ["-m", "tests.servers.mcp_server"]\n'
        f'[mcp.servers.bad]\n{server}args = ["-m", "tests.servers.mcp_server", "--crash"]\n'
        '[approval]\nallow_tools = ["mcp__good__echo"]\n'
    )
    return config_file


async def test_tools_lists_the_servers_that_started_and_says_a_failure_once_per_request(
    pipe: PipeInput, ollama_env: FakeOllama, good_and_bad_mcp: Path
) -> None:
    """One MCP server that crashed hid every tool from `/tools` (only its sentence was
    shown), and its sentence came back before every answer of the chat."""
    shell: Shell = start_shell(pipe, None)
    try:
        await shell.command("/tools on")
        for question in ("first", "second"):
            ollama_env.queue(
                Reply(pieces=[], tool_calls=[FakeCall("mcp__good__echo", {"text": "hi"})]),
                Reply(pieces=["Echoed."]),
            )
            assert isinstance(await shell.ask(question), ChatFinished)
        chat = shell.text
        assert chat.count("MCP server 'bad'") == 1 and "told to crash" in chat
        assert chat.count("echo: hi") == 2
        await shell.command("/tools")
        listed = shell.text[len(chat) :]
        assert "MCP server 'bad'" in listed  # asked for, it is said again
        assert "mcp__good__echo" in listed and "read_file" in listed
        await shell.exit()
    finally:
        await shell.repl.services.aclose()


@pytest.fixture
def bad_names_mcp(config_file: Path) -> Path:
    """One MCP server that lists tools under names no model may call."""
    pytest.importorskip("mcp")
    root = Path(__file__).resolve().parents[2]
    config_file.write_text(
        f'[mcp.servers.b]\ncommand = "{sys.executable}"\n'
        'args = ["-m", "tests.servers.hostile_mcp", "--mode", "bad-tools"]\n'
        f'env = {{ PYTHONPATH = "{root}" }}\n'
    )
    return config_file


async def test_tools_says_what_a_server_listing_left_out(
    pipe: PipeInput, ollama_env: FakeOllama, bad_names_mcp: Path
) -> None:
    """`cortan tools` named the tools a server offered under bad names; `/tools` left
    them out without a word."""
    shell: Shell = start_shell(pipe, None)
    try:
        await shell.command("/tools")
        assert "mcp__b__echo" in shell.text
        assert "left out" in shell.text, shell.text
        await shell.exit()
    finally:
        await shell.repl.services.aclose()
