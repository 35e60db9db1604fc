"""What the engine did that the client did not ask for reaches the client (docs/serve.md):
``X-Cortan-Notice`` headers, ``"cortan": {"notices": [...]}`` in the final object or
chunk, the access log; ``X-Cortan-Trim: refuse`` turns trimming into a 400.

The window is the fake Ollama's (``/api/show``): 2048 tokens, 1024 kept for the
answer, so a conversation of ten long turns is trimmed.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.serve.conftest import TOKEN, Running
from tests.servers import FakeOllama

MODEL = "ollama:llama3.2:latest"
TRIMMED = "earlier turns left out to fit the 2048-token window"
HI: Any = [{"role": "user", "content": "hi"}]


def long_conversation() -> Any:
    turns: list[dict[str, str]] = []
    for index in range(10):
        role = "user" if index % 2 == 0 else "assistant"
        turns.append({"role": role, "content": f"turn {index}: " + "words to fit " * 60})
    return [*turns, {"role": "user", "content": "and now?"}]


@pytest.fixture
def small(ollama_env: FakeOllama) -> FakeOllama:
    ollama_env.context_length = 2048
    return ollama_env


def openai_client(gateway: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)


def test_a_trimmed_conversation_is_told_to_an_openai_client(
    gateway: Running, small: FakeOllama
) -> None:
    """The answer came back as if the whole conversation had been read."""
    client = openai_client(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=long_conversation()
    )
    assert TRIMMED in raw.headers["x-cortan-notice"]
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello, world!"
    notices = (completion.model_extra or {})["cortan"]["notices"]
    assert len(notices) == 1
    assert TRIMMED in notices[0]
    client.close()


def test_a_streamed_openai_answer_ends_with_its_notices(
    gateway: Running, small: FakeOllama
) -> None:
    client = openai_client(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=long_conversation(), stream=True
    )
    assert TRIMMED in raw.headers["x-cortan-notice"]  # known before the first piece
    chunks = list(raw.parse())
    final = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert TRIMMED in (final[0].model_extra or {})["cortan"]["notices"][0]
    assert all("cortan" not in (chunk.model_extra or {}) for chunk in chunks if chunk != final[0])
    client.close()


def test_a_trimmed_conversation_is_told_to_an_ollama_client(
    gateway: Running, small: FakeOllama
) -> None:
    seen: list[httpx.Response] = []
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers,
                               event_hooks={"response": [seen.append]})) as client:  # fmt: skip
        reply = client.chat(model=MODEL, messages=long_conversation(), stream=False)
    assert reply.message.content == "Hello, world!"
    assert TRIMMED in seen[-1].headers["x-cortan-notice"]
    assert TRIMMED in seen[-1].json()["cortan"]["notices"][0]


def test_a_streamed_ollama_answer_ends_with_its_notices(
    gateway: Running, small: FakeOllama
) -> None:
    body = {"model": MODEL, "messages": long_conversation()}
    with httpx.stream("POST", gateway.url + "/api/chat", json=body,
                      headers=gateway.headers) as reply:  # fmt: skip
        lines = [json.loads(line) for line in reply.iter_lines() if line]
    assert lines[-1]["done"] is True
    assert TRIMMED in lines[-1]["cortan"]["notices"][0]
    assert all("cortan" not in line for line in lines[:-1])


def test_an_answer_nothing_happened_to_is_as_the_api_sends_it(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    raw = openai_client(gateway).chat.completions.with_raw_response.create(model=MODEL, messages=HI)
    assert "x-cortan-notice" not in raw.headers
    assert "cortan" not in (raw.parse().model_extra or {})


def test_trim_refused_is_400_context_overflow_and_nothing_is_sent(
    gateway: Running, small: FakeOllama
) -> None:
    client = openai_client(gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL, messages=long_conversation(),
            extra_headers={"X-Cortan-Trim": "refuse"},
        )  # fmt: skip
    assert refused.value.status_code == 400
    assert refused.value.code == "context_overflow"
    assert "asked not to trim it" in refused.value.message
    assert small.chat_requests == []
    # A conversation that fits is answered as ever.
    reply = client.chat.completions.create(
        model=MODEL, messages=HI, extra_headers={"X-Cortan-Trim": "refuse"}
    )
    assert reply.choices[0].message.content == "Hello, world!"
    client.close()


def test_a_trim_header_it_cannot_read_is_400(gateway: Running, ollama_env: FakeOllama) -> None:
    body = {"model": MODEL, "messages": HI, "stream": False}
    headers = {**gateway.headers, "X-Cortan-Trim": "sometimes"}
    reply = httpx.post(gateway.url + "/api/chat", json=body, headers=headers)
    assert reply.status_code == 400
    assert "X-Cortan-Trim" in reply.json()["error"]


def test_notices_are_in_the_access_log(
    gateway: Running, small: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cortan.serve.access"):
        openai_client(gateway).chat.completions.create(model=MODEL, messages=long_conversation())
        gateway.stop_now()  # the line is written when the chat ends: wait for it
    lines = [r.getMessage() for r in caplog.records if r.name == "cortan.serve.access"]
    finished = [line for line in lines if line.startswith("openai finished")]
    assert TRIMMED in finished[0]
    assert "notices=[" in finished[0]


def test_fields_the_gateway_drops_are_told(gateway: Running, ollama_env: FakeOllama) -> None:
    """A field no provider takes through the gateway is told, in the header and the body,
    as the engine's notices are; the options it carries go on."""
    raw = openai_client(gateway).chat.completions.with_raw_response.create(
        model=MODEL, messages=HI, user="someone", temperature=0.2
    )
    told = raw.headers["x-cortan-notice"]
    assert told.startswith("cortan serve did not pass on user:")
    extra = raw.parse().model_extra or {}
    assert extra["cortan"]["notices"] == [told]
    assert ollama_env.chat_requests[-1].json["options"]["temperature"] == 0.2
    options = {"top_k": 5, "not_an_option": 1}
    body = {"model": MODEL, "messages": HI, "stream": False, "options": options}
    reply = httpx.post(gateway.url + "/api/chat", json=body, headers=gateway.headers)
    assert reply.json()["cortan"]["notices"][0].startswith(
        "cortan serve did not pass on options.not_an_option:"
    )
    assert ollama_env.chat_requests[-1].json["options"]["top_k"] == 5
