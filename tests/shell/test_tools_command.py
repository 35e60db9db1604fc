"""`/tools` in the REPL: the state and the list, on and off, and a refused word.

Here the REPL reads a pipe: there is no terminal to ask on, so a tool call runs only
when `[approval] allow_tools` names it (the prompts are tested on a pty in tests/e2e).
"""

from __future__ import annotations

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
