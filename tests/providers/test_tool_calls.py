"""Tool calls on both wires: the provider contract's ToolCall pieces, and what is sent.

Same loopback backends as test_contract.py; each streamed shape of a turn's calls
ends as whole ``ToolCall`` pieces, in order, before the one ``Finish``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cortan.config.settings import Timeouts
from cortan.core.errors import BadResponseError
from cortan.core.messages import Message, ToolCall
from cortan.providers.base import Finish, ModelRequest
from tests.providers.test_contract import Backend, make_backend
from tests.servers import FakeCall, FakeOllama, FakeOpenAI, Reply

SPEC = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
}


@pytest.fixture(params=["ollama", "openai"])
async def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Backend]:
    monkeypatch.setenv("K", "sk-contract")
    server = FakeOllama() if request.param == "ollama" else FakeOpenAI()
    with server:
        made = make_backend(request.param, server, Timeouts(connect=2, first_token=5, total=2))
        try:
            yield made
        finally:
            await made.provider.aclose()


async def collect(backend: Backend, *messages: Message) -> list[Any]:
    request = ModelRequest(backend.model, messages or (Message("user", "hi"),), tools=(SPEC,))
    return [item async for item in backend.provider.stream_chat(request)]


@pytest.mark.parametrize(("pieces", "interleave"), [(1, False), (5, False), (3, True)])
async def test_calls_arrive_whole_and_in_order(
    backend: Backend, pieces: int, interleave: bool
) -> None:
    backend.server.queue(
        Reply(
            pieces=["Looking."],
            tool_calls=[
                FakeCall("read_file", {"path": "a.txt"}, id="call_1"),
                FakeCall("read_file", {"path": "ü/b.txt"}, id="call_2"),
            ],
            argument_pieces=pieces,
            interleave_calls=interleave,
            finish_reason="tool_calls",
        )
    )
    items = await collect(backend)
    assert items[0] == "Looking."
    calls = [item for item in items if isinstance(item, ToolCall)]
    assert [c.name for c in calls] == ["read_file", "read_file"]
    assert [json.loads(c.arguments) for c in calls] == [{"path": "a.txt"}, {"path": "ü/b.txt"}]
    assert len({c.id for c in calls}) == 2
    assert isinstance(items[-1], Finish)
    sent = backend.server.chat_requests[0].json
    assert sent["tools"][0]["function"]["name"] == "read_file"


async def test_malformed_arguments_arrive_as_written(backend: Backend) -> None:
    if not isinstance(backend.server, FakeOpenAI):
        pytest.skip("Ollama sends arguments as objects: the server parsed them")
    backend.server.queue(Reply(pieces=[], tool_calls=[FakeCall("read_file", '{"path": ')]))
    (call,) = [i for i in await collect(backend) if isinstance(i, ToolCall)]
    assert call.arguments == '{"path": '


async def test_too_many_calls_in_one_turn_is_a_bad_response(backend: Backend) -> None:
    backend.server.queue(Reply(pieces=[], tool_calls=[FakeCall("x", {})] * 65))
    with pytest.raises(BadResponseError, match="more than 64 tool calls"):
        await collect(backend)


async def test_calls_and_results_go_back_in_each_wire_s_form(backend: Backend) -> None:
    call = ToolCall("call_9", "read_file", '{"path": "a.txt"}')
    messages = (
        Message("user", "read a.txt"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "contents", tool_call_id="call_9", tool_name="read_file"),
    )
    await collect(backend, *messages)
    sent = backend.server.chat_requests[0].json["messages"]
    assistant, tool = sent[1], sent[2]
    if isinstance(backend.server, FakeOpenAI):
        assert assistant["tool_calls"][0]["id"] == "call_9"
        assert assistant["tool_calls"][0]["function"]["arguments"] == '{"path": "a.txt"}'
        assert tool == {"role": "tool", "tool_call_id": "call_9", "content": "contents"}
    else:
        assert assistant["tool_calls"][0]["function"]["arguments"] == {"path": "a.txt"}
        assert tool["tool_name"] == "read_file" and tool["content"] == "contents"
