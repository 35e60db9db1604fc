"""What real clients send that the gateway cannot carry gets an answer naming it.

The gateway in its test thread, the fake Ollama upstream; the openai and ollama
SDKs and a WebSocket client as the programs people point at it.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.serve.conftest import TOKEN, Running
from tests.serve.test_streams import ws_chat
from tests.servers import FakeOllama, Reply

MODEL = "ollama:llama3.2:latest"


def test_an_audio_part_is_refused_by_its_type(gateway: Running, ollama_env: FakeOllama) -> None:
    # Before: "message 1 has a content part that is not text", naming neither the part
    # nor what the gateway takes. (Images are carried: tests/serve/test_images.py.)
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
    audio = {"type": "input_audio", "input_audio": {"data": "aGk=", "format": "wav"}}
    parts: Any = [{"type": "text", "text": "what is it?"}, audio]
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": parts}])
    message = raised.value.message
    assert "message 1's content part 2 is of type 'input_audio'" in message
    assert "text and image_url parts" in message
    assert not ollama_env.chat_requests


def test_a_websocket_chat_fills_a_format_and_names_fields_it_drops(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    # Before: `format` and `user` were dropped silently: the answer came as the model
    # wrote it, unchecked, and the client never knew.
    ollama_env.queue(Reply(pieces=["```json\n", '{"a": ', '"x"}', "\n```"]))
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    chat = {"type": "chat", "id": "c1", "model": MODEL, "prompt": "hi", "format": schema,
            "user": "alice"}  # fmt: skip
    events = ws_chat(gateway, [chat])
    assert ollama_env.chat_requests[-1].json["format"] == schema
    notices = [e["text"] for e in events if e["type"] == "notice"]
    assert any("did not pass on user" in text for text in notices), notices
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert deltas == ['{"a": "x"}']  # the checked document, in one piece
    assert events[-1]["status"] == "finished"


def test_a_websocket_chat_with_tools_is_refused(gateway: Running, ollama_env: FakeOllama) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    chat = {"type": "chat", "id": "c1", "model": MODEL, "prompt": "hi", "tools": tools}
    (event,) = ws_chat(gateway, [chat])
    assert event["type"] == "error" and event["kind"] == "unsupported"
    assert event["message"] == "`tools` is not supported by cortan serve yet"
    assert not ollama_env.chat_requests


def test_a_message_name_is_told_and_earlier_reasoning_is_not(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    # Before: a message's `name` was dropped in silence.
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
    turns: Any = [
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "assistant", "content": "hello", "reasoning_content": "greet back"},
        {"role": "user", "content": "and again", "name": "alice"},
    ]
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=turns)
    assert raw.headers.get_list("x-cortan-notice") == [
        "cortan serve did not pass on messages[].name: no provider takes it through the "
        "gateway (docs/serve.md)"
    ]
    answers: list[Any] = []
    hooks = {"response": [answers.append]}
    back = [
        {"role": "assistant", "content": "hi", "thinking": "why"},
        {"role": "user", "content": "hi"},
    ]
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers, event_hooks=hooks)) as o:
        assert o.chat(MODEL, back).message.content == "Hello, world!"
    assert "x-cortan-notice" not in answers[-1].headers


@pytest.mark.parametrize("messages", [True, -1, 1.5, "hi"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_messages_that_are_not_a_list_are_400(
    gateway: Running, path: str, messages: object
) -> None:
    reply = httpx.post(
        gateway.url + path, headers=gateway.headers,
        json={"model": MODEL, "messages": messages, "stream": False},
    )  # fmt: skip
    assert reply.status_code == 400, reply.text
    assert "`messages` must be a non-empty list" in reply.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat", "/api/generate"])
@pytest.mark.parametrize("stream", ["yes", 0, [], {}])
def test_a_stream_that_is_not_true_or_false_is_400(
    gateway: Running, ollama_env: FakeOllama, path: str, stream: object
) -> None:
    # Before: read as "no" by the OpenAI door and "yes" by Ollama's, silently.
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "prompt": "hi"}
    reply = httpx.post(gateway.url + path, headers=gateway.headers, json={**body, "stream": stream})
    assert reply.status_code == 400, reply.text
    assert "`stream` must be true or false" in reply.text
    assert not ollama_env.chat_requests


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ("usage", "`stream_options` must be an object"),
        ([True], "`stream_options` must be an object"),
        ({"include_usage": "yes"}, "`include_usage` must be true or false"),
    ],
)
def test_stream_options_of_the_wrong_type_are_400(
    gateway: Running, ollama_env: FakeOllama, options: object, error: str
) -> None:
    # Before: ignored, so a client that asked for usage silently went without it.
    reply = httpx.post(
        gateway.url + "/v1/chat/completions", headers=gateway.headers,
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
              "stream_options": options},
    )  # fmt: skip
    assert reply.status_code == 400, reply.text
    assert error in reply.text
    assert not ollama_env.chat_requests


def test_stream_options_with_include_usage_still_end_with_the_counts(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[-1].usage is not None and not chunks[-1].choices
