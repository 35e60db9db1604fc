"""MCP servers through the official SDK: a small test server started, listed, called, stopped.

The server (tests/servers/mcp_server.py) is the SDK's own MCPServer, run as a real
child process on stdio, or on streamable HTTP over loopback. Servers that cannot
start, crash or hang end in one sentence within their start timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from cortan.app import App
from cortan.config.load import load_settings
from cortan.config.settings import McpServer
from cortan.core.errors import ToolError
from cortan.core.events import ChatFinished, ToolResult
from cortan.core.requests import ChatRequest
from cortan.engine.approval import ApprovalGate
from cortan.engine.tools.mcp import McpPool
from tests.servers import FakeCall, FakeOllama, Reply

ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "tests.servers.mcp_server"]


def stdio(*flags: str, start_timeout: float = 15.0) -> McpServer:
    return McpServer(
        command=SERVER[0], args=[*SERVER[1:], *flags], env=_env(), start_timeout=start_timeout
    )


def _env() -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def pool() -> AsyncIterator[McpPool]:
    made = McpPool({"t": stdio()})
    yield made
    await made.aclose()


async def test_a_stdio_server_is_started_listed_called_and_stopped() -> None:
    pool = McpPool({"t": stdio()})
    tools = {tool.name: tool for tool in await pool.list_tools()}
    assert sorted(tools) == ["mcp__t__add", "mcp__t__echo", "mcp__t__fail", "mcp__t__pid"]
    assert await tools["mcp__t__echo"].call({"text": "hi"}) == "echo: hi"
    assert await tools["mcp__t__add"].call({"a": 2, "b": 40}) == "42"
    with pytest.raises(ToolError, match="the tool said"):
        await tools["mcp__t__fail"].call({"reason": "no"})
    pid = int(await tools["mcp__t__pid"].call({}))
    assert alive(pid)
    await pool.aclose()
    assert not alive(pid)  # the SDK waited for it to exit, and reaped it


async def test_started_once_on_first_use(pool: McpPool) -> None:
    first = await pool.list_tools()
    again = await pool.list_tools()
    assert [t.name for t in first] == [t.name for t in again]
    pids = {await t.call({}) for t in again if t.tool == "pid"}
    pids |= {await t.call({}) for t in first if t.tool == "pid"}
    assert len(pids) == 1


@pytest.mark.parametrize(
    ("server", "said"),
    [
        (McpServer(command="/nonexistent/cortan-mcp"), "its command was not found"),
        (stdio("--crash"), "the test server was told to crash"),
        (stdio("--hang", start_timeout=1.0), "did not start within 1 s"),
        (McpServer(url="http://127.0.0.1:9/mcp", start_timeout=5.0), "MCP server 'x'"),
    ],
)
async def test_a_server_that_cannot_start_is_one_sentence(server: McpServer, said: str) -> None:
    pool = McpPool({"x": server})
    begun = time.monotonic()
    with pytest.raises(ToolError) as caught:
        await pool.list_tools()
    await pool.aclose()
    assert time.monotonic() - begun < 8
    text = str(caught.value)
    assert said in text
    assert "\n" not in text and "Traceback" not in text
    told: list[str] = []

    async def tell(sentence: str) -> None:
        told.append(sentence)

    again = McpPool({"x": server})
    assert await again.list_tools(tell) == []
    await again.aclose()
    assert len(told) == 1


@pytest.fixture
def http_server() -> Iterator[str]:
    with subprocess.Popen(
        [*SERVER, "--http"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **_env()},
    ) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()  # printed once it listens
        finally:
            proc.terminate()
            proc.wait(10)


async def test_a_streamable_http_server(http_server: str) -> None:
    pool = McpPool({"web": McpServer(url=http_server)})
    try:
        tools = {tool.name: tool for tool in await pool.list_tools()}
        assert await tools["mcp__web__echo"].call({"text": "over http"}) == "echo: over http"
    finally:
        await pool.aclose()


async def test_the_model_calls_an_mcp_tool_through_the_gate(ollama_env: FakeOllama) -> None:
    settings = load_settings(
        retry={"attempts": 1},
        approval={"allow_tools": ["mcp__t__*"]},
        mcp={"servers": {"t": stdio().model_dump()}},
    )
    app = App.build(settings)
    app.use_tools(ApprovalGate(settings.approval))
    results: list[ToolResult] = []
    app.bus.subscribe(ToolResult, results.append)
    ollama_env.queue(
        Reply(pieces=[], tool_calls=[FakeCall("mcp__t__echo", {"text": "ping"})]),
        Reply(pieces=["pong"]),
    )
    try:
        ended = await app.ask(ChatRequest(1, "ping the server", tools=True))
    finally:
        await app.aclose()
    assert isinstance(ended, ChatFinished), ended
    names = [t["function"]["name"] for t in ollama_env.chat_requests[0].json["tools"]]
    assert "mcp__t__echo" in names
    assert results[0].output == "echo: ping"
    sent = [m for m in ollama_env.chat_requests[1].json["messages"] if m["role"] == "tool"]
    assert "echo: ping" in sent[0]["content"]


async def test_a_tool_that_does_not_exist_is_told_every_tool_offered(
    ollama_env: FakeOllama,
) -> None:
    settings = load_settings(
        retry={"attempts": 1},
        tools={"builtin": ["list_dir"]},
        mcp={"servers": {"t": stdio().model_dump()}},
    )
    app = App.build(settings)
    app.use_tools(ApprovalGate(settings.approval))
    ollama_env.queue(
        Reply(pieces=[], tool_calls=[FakeCall("echo", {"text": "ping"})]),
        Reply(pieces=["sorry"]),
    )
    try:
        ended = await app.ask(ChatRequest(1, "ping the server", tools=True))
    finally:
        await app.aclose()
    assert isinstance(ended, ChatFinished), ended
    (sent,) = [m for m in ollama_env.chat_requests[1].json["messages"] if m["role"] == "tool"]
    assert "there is no tool named 'echo'" in sent["content"]
    assert "list_dir, mcp__t__echo, mcp__t__add" in sent["content"]
