"""Ollama's API spoken without its SDK: what the SDK mangled or refused, against the fake.

The provider used to hand its requests to the SDK's models and read each line
through them. Where that changed what went out, or failed a reply that was fine,
the provider now sends and reads the wire as it is (cortan.providers.ollama_wire).
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import pytest

from cortan.config.settings import ProviderConfig, Timeouts
from cortan.core.errors import CortanError
from cortan.core.messages import Message
from cortan.providers import get_factory
from cortan.providers.base import Finish, ModelRequest, Piece, Provider, ToolCall
from tests.servers import FakeOllama, Reply

MODEL = "llama3.2:latest"


def make(server: FakeOllama) -> Provider:
    config = ProviderConfig(kind="ollama", hosts=[server.url])
    return get_factory("ollama")("ollama", server.url, config, Timeouts(connect=5, total=10))


async def answer(server: FakeOllama, request: ModelRequest | None = None) -> list[Piece]:
    provider = make(server)
    try:
        request = request or ModelRequest(MODEL, (Message("user", "hi"),))
        async with aclosing(provider.stream_chat(request)) as stream:  # type: ignore[type-var]
            return [piece async for piece in stream]
    finally:
        await provider.aclose()


async def failure(server: FakeOllama) -> str:
    try:
        await answer(server)
    except CortanError as exc:
        return str(exc)
    raise AssertionError("the answer was accepted")


def lines(*parts: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(part, ensure_ascii=False).encode() + b"\n" for part in parts)


DONE = {"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 2}


async def test_a_line_separator_in_the_answer_is_text(ollama: FakeOllama) -> None:
    # JSON text may hold U+2028 and U+0085 unescaped (Go escapes the one, not the
    # other); the SDK split lines there too and failed the answer as unparsable.
    said = "one\u2028two\x85three"
    ollama.queue(Reply(body=lines({"message": {"role": "assistant", "content": said}}, DONE)))
    pieces = await answer(ollama)
    assert pieces[0] == said
    assert isinstance(pieces[1], Finish)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        ({"message": "the GPU fell over"}, "reported an error: the GPU fell over"),
        ("[1]", "reported an error: [1]"),
    ],
    ids=["an object", "JSON that is no object"],
)
async def test_an_error_line_of_any_shape_is_the_servers_error(
    ollama: FakeOllama, error: object, said: str
) -> None:
    # The SDK failed on these itself ("failed unexpectedly: TypeError").
    ollama.queue(
        Reply(body=lines({"message": {"role": "assistant", "content": "a"}}, {"error": error}))
    )
    assert (await failure(ollama)).endswith(said)


async def test_an_error_body_that_is_no_object_is_quoted(ollama: FakeOllama) -> None:
    ollama.queue(Reply(status=503, body=b'["overloaded"]'))
    assert (await failure(ollama)).endswith('reported an error: ["overloaded"]')


async def test_a_tool_goes_out_with_its_whole_schema(ollama: FakeOllama) -> None:
    # The SDK rebuilt each tool from its model, keeping type, items, description and
    # enum of each property: a minimum, a default, anyOf or additionalProperties never
    # reached the model.
    tool = {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read lines of a file.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "first": {"type": "integer", "minimum": 1, "default": 1},
                    "mode": {"anyOf": [{"const": "text"}, {"const": "hex"}]},
                },
                "required": ["path"],
                "additionalProperties": False,
            },
        },
    }
    ollama.queue(Reply(pieces=["ok"]))
    await answer(ollama, ModelRequest(MODEL, (Message("user", "hi"),), tools=(tool,)))
    sent = ollama.chat_requests[-1].json
    assert isinstance(sent, dict)
    assert sent["tools"] == [tool]


class _Older(FakeOllama):
    """A server whose ``/api/show`` has no ``model_info`` and odd details."""

    def _show(self, name: str) -> dict[str, Any]:
        shown = super()._show(name)
        del shown["model_info"]
        shown["details"] = {**shown["details"], "family": 7}
        return shown


async def test_a_show_without_model_info_still_gives_what_it_says() -> None:
    # The SDK refused the whole reply ("cannot parse"): no window, and no capabilities.
    with _Older() as server:
        provider = make(server)
        try:
            shown = await provider.show_model(MODEL)
        finally:
            await provider.aclose()
    assert shown.context_length is None
    assert shown.family is None
    assert shown.capabilities == ("completion", "tools", "thinking")
    assert shown.parameter_size == "3.2B"


async def test_a_byte_order_mark_before_the_first_line_is_not_the_answer(
    ollama: FakeOllama,
) -> None:
    # JSON's parser refuses a BOM: the whole answer failed as a reply cortan "cannot parse".
    said = {"message": {"role": "assistant", "content": "hi"}, "done": False}
    ollama.queue(Reply(body=b"\xef\xbb\xbf" + lines(said, DONE)))
    pieces = await answer(ollama)
    assert pieces[0] == "hi" and isinstance(pieces[-1], Finish)


@pytest.mark.parametrize(
    ("status", "body", "sentence"),
    [
        (500, b'{"error": {"message": "boom", "code": 5}}', "reported an error: boom"),
        (500, b'{"error": null}', "reported an error: no reason given"),
        (401, b'{"error": [1, "two"]}', 'refused the request (401): [1, "two"]'),
        (200, b'{"error": {"message": "mid-stream"}}\n', "reported an error: mid-stream"),
        (200, b'{"error": {"type": "x"}}\n', 'reported an error: {"type": "x"}'),
    ],
    ids=["object", "null", "list", "object-in-stream", "object-without-message"],
)
async def test_an_error_of_any_json_shape_is_quoted_as_json(
    ollama: FakeOllama, status: int, body: bytes, sentence: str
) -> None:
    # Python's own spelling went to the user: "None", "{'message': 'boom', 'code': 5}".
    ollama.queue(Reply(status=status, body=body))
    assert (await failure(ollama)).endswith(sentence)


class _Boastful(FakeOllama):
    """A server whose ``/api/show`` names 100,000 capabilities, and odd ones."""

    def _show(self, name: str) -> dict[str, Any]:
        shown = super()._show(name)
        shown["capabilities"] = ["", "x" * 1000, 5, *(f"c{i}" for i in range(100_000))]
        return shown


async def test_a_show_naming_100000_capabilities_keeps_a_few() -> None:
    # All were kept and `cortan models show` printed each, a line of 700 KB.
    with _Boastful() as server:
        provider = make(server)
        try:
            shown = await provider.show_model(MODEL)
        finally:
            await provider.aclose()
    assert shown.capabilities == ("x" * 64, *(f"c{i}" for i in range(31)))  # long: cut


async def test_a_lone_surrogate_in_a_tool_call_becomes_a_replacement_character(
    ollama: FakeOllama,
) -> None:
    # Kept, it failed the store's record of the call and then the next request, which
    # sends the call back: "sent a reply cortan cannot parse", the server blamed.
    call = b'{"function": {"name": "f\\ud800", "arguments": {"\\udfff": ["\\ud83d\\ude00"]}}}'
    line = b'{"message": {"role": "assistant", "tool_calls": [' + call + b"]}}\n"
    ollama.queue(Reply(body=line + lines(DONE)))
    pieces = await answer(ollama)
    assert pieces[0] == ToolCall("call_1", "f\ufffd", '{"\\ufffd": ["\\ud83d\\ude00"]}')
    assert json.loads(pieces[0].arguments) == {"\ufffd": ["\U0001f600"]}  # the pair kept
