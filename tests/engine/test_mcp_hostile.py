"""Hostile MCP servers: each misbehaviour is one sentence naming the server, in bounded
time and memory, and the server's other calls (or the other servers) go on.

The server is tests/servers/hostile_mcp.py, raw JSON-RPC on stdio run as a real
child process, so it can do what the SDK's own server never would.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from cortan.config.settings import McpServer
from cortan.core.errors import ToolError
from cortan.engine.tools.mcp import McpPool, McpTool

ROOT = Path(__file__).resolve().parents[2]


def hostile(mode: str, size: int = 10, call_timeout: float = 20.0) -> McpServer:
    return McpServer(
        command=sys.executable,
        args=["-m", "tests.servers.hostile_mcp", "--mode", mode, "--size", str(size)],
        env={"PYTHONPATH": str(ROOT)},
        start_timeout=15.0,
        call_timeout=call_timeout,
    )


async def started(pool: McpPool) -> dict[str, McpTool]:
    return {tool.tool: tool for tool in await pool.list_tools()}


@pytest.fixture
async def pools() -> AsyncIterator[list[McpPool]]:
    made: list[McpPool] = []
    yield made
    for pool in made:
        await pool.aclose()


def pool_of(pools: list[McpPool], **servers: McpServer) -> McpPool:
    pool = McpPool(servers)
    pools.append(pool)
    return pool


async def test_lines_that_are_not_json_rpc_or_not_utf8_are_skipped(pools: list[McpPool]) -> None:
    # Before: one byte that was not UTF-8 ended the connection ("'utf-8' codec can't
    # decode byte 0xff"), so a server that logged to stdout lost all its tools.
    tools = await started(pool_of(pools, h=hostile("garbage")))
    assert await tools["echo"].call({"text": "still here"}) == "echo: still here"


async def test_a_result_that_is_not_utf8_is_replaced_not_fatal(pools: list[McpPool]) -> None:
    tools = await started(pool_of(pools, h=hostile("not-utf8")))
    text = await tools["big"].call({})
    assert text.startswith("caf\ufffd")
    assert await tools["echo"].call({"text": "x"}) == "echo: x"


async def test_a_result_larger_than_the_bound_fails_at_once_and_the_server_goes_on(
    pools: list[McpPool],
) -> None:
    # Before: the SDK joined each chunk to the line so far (quadratic): 50 MB took
    # longer than the call's timeout, and the server answered nothing after it.
    tools = await started(pool_of(pools, h=hostile("huge-result", 30_000_000)))
    begun = time.monotonic()
    with pytest.raises(ToolError, match=r"MCP server 'h' .* sent an answer larger than 8 MiB"):
        await tools["big"].call({})
    assert time.monotonic() - begun < 10
    assert await tools["echo"].call({"text": "after"}) == "echo: after"


async def test_a_line_without_end_is_cut_off_in_bounded_time(pools: list[McpPool]) -> None:
    # Before: cortan read it for as long as the process lived, its memory and CPU
    # growing, long after the call had timed out.
    tools = await started(pool_of(pools, h=hostile("endless-line")))
    begun = time.monotonic()
    with pytest.raises(ToolError, match="sent an answer larger than 8 MiB"):
        await tools["big"].call({})
    with pytest.raises(ToolError, match=r"sent one line of more than 64 MiB; cortan reads no more"):
        await tools["echo"].call({"text": "x"})
    assert time.monotonic() - begun < 15


async def test_an_answer_nested_too_deeply_fails_its_call_at_once(pools: list[McpPool]) -> None:
    # Before: the line was skipped and the call waited out its whole call_timeout.
    tools = await started(pool_of(pools, h=hostile("deep-result", 300, call_timeout=30)))
    begun = time.monotonic()
    with pytest.raises(ToolError, match="its answer could not be read as JSON-RPC"):
        await tools["big"].call({})
    assert time.monotonic() - begun < 5
    assert await tools["echo"].call({"text": "x"}) == "echo: x"


async def test_a_server_that_dies_mid_call_says_how(pools: list[McpPool]) -> None:
    tools = await started(pool_of(pools, h=hostile("die-in-call")))
    with pytest.raises(ToolError, match=r"MCP server 'h' .* it exited \(status 7\)"):
        await tools["echo"].call({"text": "x"})


async def test_a_silent_call_is_bounded_and_named(pools: list[McpPool]) -> None:
    tools = await started(pool_of(pools, h=hostile("silent-call", call_timeout=1)))
    with pytest.raises(ToolError, match=r"MCP server 'h' .* did not answer within 1 s"):
        await tools["echo"].call({"text": "x"})


@pytest.mark.parametrize("mode", ["silent-init", "silent-list"])
async def test_a_server_silent_at_start_is_left_out_and_the_others_work(
    pools: list[McpPool], mode: str
) -> None:
    slow = hostile(mode).model_copy(update={"start_timeout": 1.0})
    pool = pool_of(pools, slow=slow, good=hostile("ok"))
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    tools = await pool.list_tools(tell)
    assert [t.name for t in tools] == ["mcp__good__echo", "mcp__good__big"]
    assert len(told) == 1 and "MCP server 'slow'" in told[0] and "within 1 s" in told[0]


async def test_images_and_blobs_are_named_not_sent(pools: list[McpPool]) -> None:
    tools = await started(pool_of(pools, h=hostile("binary-result")))
    text = await tools["big"].call({})
    assert text == "[image left out]\n[resource left out]\nafter the image"


def test_lines_are_framed_within_the_bound_in_linear_time() -> None:
    from cortan.engine.tools.stdio import Lines, request_id

    lines = Lines(100)
    assert lines.feed(b'{"a": 1}\n{"b"') == [("line", b'{"a": 1}')]
    assert lines.feed(b": 2}\n\n  \n") == [("line", b'{"b": 2}')]
    head = b'{"jsonrpc": "2.0", "id": 41, "result": "'
    out = lines.feed(head + b"x" * 200)
    assert out == [("too-long", (head + b"x" * 200)[:512])]
    assert request_id(out[0][1]) == 41
    assert lines.feed(b"x" * 500) == []  # the rest of that line is thrown away
    assert lines.feed(b'x"}\n{"id": "s-1"}\n') == [("line", b'{"id": "s-1"}')]
    assert request_id(b'{"id": "s-1"}') == "s-1"
    lines.feed(b"y" * 101)
    lines.feed(b"y" * 800)
    assert lines.endless


async def test_hostile_tool_names_are_left_out_and_said_once(pools: list[McpPool]) -> None:
    # Before: a name with a Cyrillic letter (a lookalike of `echo`) or any letter beyond
    # ASCII was offered, and an OpenAI-compatible server refuses a whole request over
    # one such name; a name listed twice was offered twice; a 100 KB description and a
    # schema of a thousand properties went out with every request.
    pool = pool_of(pools, a=hostile("bad-tools", 100), a__b=hostile("bad-tools", 100))
    notes: list[str] = []

    async def note(text: str) -> None:
        notes.append(text)

    tools = await pool.list_tools(None, note)
    names = [tool.name for tool in tools]
    wire = re.compile(r"[A-Za-z0-9_-]{1,64}")
    assert all(wire.fullmatch(name) for name in names), names
    assert "mcp__a__echo" in names
    assert not [n for n in names if n.endswith("__dup") or "huge_schema" in n]
    # server a's `b__c` and server a__b's `c` would both be mcp__a__b__c: neither is
    assert "mcp__a__b__c" not in names
    assert any("'a' and 'a__b' both offer a tool named 'mcp__a__b__c'" in n for n in notes)
    assert all(len(tool.description) <= 2000 for tool in tools)
    said = "\n".join(notes)
    for shown in ("'esc␛[2Jname'", "'rm<U+202E>elif'", "'zero<U+200B>width'", "'dup'"):
        assert shown in said
    assert "huge_schema" in said
    assert all("\x1b" not in n and "\n" not in n for n in notes)
    again: list[str] = []

    async def note_again(text: str) -> None:
        again.append(text)

    assert [t.name for t in await pool.list_tools(None, note_again)] == names
    assert again == []  # said once per process, not on every request


async def test_each_gateway_request_hears_what_a_listing_left_out(
    pools: list[McpPool],
) -> None:
    # Before: once per process, whoever asked: a second gateway client was not told.
    pool = pool_of(pools, a=hostile("bad-tools", 100))
    heard: list[list[str]] = [[], []]
    for notes in heard:

        async def note(text: str, notes: list[str] = notes) -> None:
            notes.append(text)

        await pool.list_tools(None, note, again=False, client="openai editor")
    assert heard[0]
    assert heard[1] == heard[0]


async def test_ten_thousand_tools_are_cut_and_said(pools: list[McpPool]) -> None:
    notes: list[str] = []

    async def note(text: str) -> None:
        notes.append(text)

    begun = time.monotonic()
    tools = await pool_of(pools, h=hostile("many-tools", 10_000)).list_tools(None, note)
    assert len(tools) == 256
    assert notes == [notes[0]]
    assert "lists 10001 tools; the first 256 are offered" in notes[0]
    assert time.monotonic() - begun < 10


async def test_a_tool_list_that_breaks_mcp_names_where(pools: list[McpPool]) -> None:
    with pytest.raises(ToolError) as caught:
        await pool_of(pools, h=hostile("invalid-tool")).list_tools()
    text = str(caught.value)
    assert "MCP server 'h'" in text
    assert "does not follow MCP (tools.1.inputSchema.type: Input should be 'object')" in text


async def test_requests_and_notifications_nobody_asked_for_are_refused(
    pools: list[McpPool], tmp_path: Path
) -> None:
    # Held: sampling, roots and elicitation requests are answered with an error, log
    # messages and unknown notifications are dropped, and the call is answered.
    log = tmp_path / "received.jsonl"
    server = hostile("chatty")
    server = server.model_copy(update={"args": [*server.args, "--log", str(log)]})
    tools = await started(pool_of(pools, h=server))
    assert await tools["echo"].call({"text": "x"}) == "echo: x"
    answers = {}
    for line in log.read_text().splitlines():
        message = json.loads(line)
        if message.get("id") in ("s1", "r1", "e1"):
            answers[message["id"]] = message
    assert set(answers) == {"s1", "r1", "e1"}
    assert all("error" in answer and "result" not in answer for answer in answers.values())
