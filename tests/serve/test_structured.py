"""Structured output through the gateway: OpenAI's ``response_format`` and Ollama's
``format`` become the request's schema, which the answer is checked against."""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

import httpx
import ollama
import openai
import pydantic
import pytest

from tests.serve.conftest import TOKEN, Running
from tests.serve.test_streams import ws_chat
from tests.servers import FakeOllama, Reply

MODEL = "ollama:llama3.2:latest"
HI: Any = [{"role": "user", "content": "Who wrote the first program?"}]
ADA = Reply(pieces=['{"name": ', '"Ada", "age": 36}'])


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_the_openai_sdks_parse_gets_the_schema_and_a_document(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """``response_format`` was refused: the SDK's ``parse`` could not be used at all."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
    ollama_env.queue(Reply(pieces=["```json\n", '{"name": "Ada", "age": 36}', "\n```"]))
    reply = client.chat.completions.parse(model=MODEL, messages=HI, response_format=Person)
    assert reply.choices[0].message.parsed == Person(name="Ada", age=36)
    sent = ollama_env.chat_requests[-1].json["format"]
    assert sent["properties"]["age"] == {"title": "Age", "type": "integer"}


def test_a_streamed_ollama_answer_is_the_mended_document_alone(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """Streamed as it came, an answer that did not fit would run into the mended one."""
    ollama_env.queue(Reply(pieces=["Ada, ", "36"]), ADA)
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers)) as client:
        parts = list(client.chat(model=MODEL, messages=HI, format=Person.model_json_schema(),
                                 stream=True))  # fmt: skip
    assert json.loads("".join(p.message.content or "" for p in parts)) == {"name": "Ada", "age": 36}
    assert parts[-1].done and parts[-1].model == MODEL
    assert len(ollama_env.chat_requests) == 2  # the first answer, then the one mended


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/chat/completions", "response_format", {"type": "json_schema", "json_schema": {}}),
        ("/v1/chat/completions", "response_format", {"type": "xml"}),
        ("/api/chat", "format", {"type": "nonsense"}),
        ("/api/chat", "format", "yaml"),
    ],
)
def test_a_schema_it_cannot_use_is_400(
    gateway: Running, path: str, field: str, value: object
) -> None:
    body = {"model": MODEL, "messages": HI, "stream": False, field: value}
    reply = httpx.post(gateway.url + path, json=body, headers=gateway.headers)
    assert reply.status_code == 400, reply.text
    assert field in reply.text


def test_a_pattern_with_huge_repeats_is_400_before_asking(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """The check of the answer ran for minutes; regex's compile of it took gigabytes."""
    schema = {"type": "string", "pattern": "(a{1,60000}){1,60000}b"}
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    body = {"model": MODEL, "messages": HI, "stream": False, "response_format": fmt}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=gateway.headers)
    assert reply.status_code == 400, reply.text
    assert "repeats up to 60000 times" in reply.json()["error"]["message"]
    assert ollama_env.chat_requests == []


BAD_SCHEMAS = [
    # jsonschema's draft look-up raised on these (AttributeError, TypeError): Starlette's
    # plain-text 500 on every chat endpoint, and the end of a WebSocket and its chats.
    ({"$schema": 5}, "$schema must be a string"),
    ({"$schema": ["x"]}, "$schema must be a string"),
    ({"$schema": {"a": 1}}, "$schema must be a string"),
    # Found only once the answer came: the model was asked, then the client got a 502.
    ({"$ref": "#/defs/nothere"}, "$ref '#/defs/nothere' leads nowhere in it"),
    ({"$ref": "other.json"}, "$ref 'other.json' leads nowhere in it"),
    ({"$ref": "#nope"}, "$ref '#nope' leads nowhere in it"),
    ({"$dynamicRef": "#meta"}, "$dynamicRef '#meta' leads nowhere in it"),
    ({"$defs": {"a": {"$ref": "#/$defs/b"}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
     "$ref '#/$defs/b' leads nowhere in it"),
    # The model was asked, then the check of its answer never ended (a 502 at the bound).
    ({"$ref": "#"}, "$ref '#' leads back to itself"),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "sentence"), BAD_SCHEMAS)
def test_a_schema_that_is_no_schema_is_400_before_asking_with_both_sdks(
    gateway: Running, ollama_env: FakeOllama, schema: dict[str, Any], sentence: str
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=HI, response_format=fmt)
    assert sentence in refused.value.message
    assert refused.value.response.headers["x-request-id"]
    with (
        closing(ollama.Client(host=gateway.url, headers=gateway.headers)) as bare,
        pytest.raises(ollama.ResponseError) as caught,
    ):
        bare.chat(model=MODEL, messages=HI, format=schema)
    assert caught.value.status_code == 400 and sentence in caught.value.error
    assert ollama_env.chat_requests == []


def test_a_schema_that_is_no_schema_ends_one_websocket_chat_not_the_socket(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    bad = {"type": "chat", "id": "bad", "model": MODEL, "prompt": "hi", "format": {"$schema": 5}}
    good = {"type": "chat", "id": "good", "model": MODEL, "prompt": "hi"}
    events = ws_chat(gateway, [bad, good])
    (error,) = [e for e in events if e["id"] == "bad"]
    assert error["type"] == "error" and "$schema must be a string" in error["message"]
    assert [e for e in events if e["id"] == "good"][-1]["type"] == "end"


def test_a_check_that_fans_out_holds_no_other_request(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """The check ran on the event loop: 4.8 s in which the gateway answered nobody.

    Judged by order, not by a time limit: while the check runs (up to its 1 s bound), the
    gateway must answer other requests one after another. Had the check held the loop, the
    first other request would wait for the whole check, so at most one could be answered
    before the checked request's own reply.
    """
    import threading
    import time

    defs: dict[str, Any] = {"a0": {"type": "integer"}}
    for level in range(1, 17):
        ref = {"$ref": f"#/$defs/a{level - 1}"}
        defs[f"a{level}"] = {"anyOf": [ref, ref]}
    ollama_env.queue(Reply(pieces=['"x"']))
    body = {"model": MODEL, "messages": HI, "stream": False,
            "format": {"$defs": defs, "$ref": "#/$defs/a16"}}  # fmt: skip
    replies: list[httpx.Response] = []
    replied_at: list[float] = []

    def ask() -> None:
        replies.append(
            httpx.post(gateway.url + "/api/chat", json=body, headers=gateway.headers, timeout=30)
        )
        replied_at.append(time.monotonic())

    asking = threading.Thread(target=ask)
    asking.start()
    while not ollama_env.chat_requests:  # the answer is in: its check begins
        time.sleep(0.01)
    answered_at = []
    while asking.is_alive():
        reply = httpx.get(gateway.url + "/api/version", headers=gateway.headers, timeout=30)
        assert reply.status_code == 200, reply.text
        answered_at.append(time.monotonic())
    asking.join(30)
    assert replies[0].status_code == 502, replies[0].text
    assert "the schema cannot be used: checking took more than 1 s" in replies[0].text
    during = [at for at in answered_at if at < replied_at[0]]
    assert len(during) >= 2, (len(during), len(answered_at))
