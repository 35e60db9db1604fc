"""The OpenAI-compatible API, driven by the real ``openai`` SDK through the gateway."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.serve.conftest import TOKEN, Running
from tests.servers import FakeOllama, FakeOpenAI, Reply

MODEL = "ollama:llama3.2:latest"
HI: Any = [{"role": "user", "content": "hi"}]


def client(gateway: Running, key: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def test_a_whole_answer_with_usage_and_the_answering_model(gateway: Running) -> None:
    reply = client(gateway).chat.completions.create(model=MODEL, messages=HI)
    assert reply.choices[0].message.content == "Hello, world!"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == MODEL
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_a_streamed_answer_ends_with_usage_when_asked(gateway: Running) -> None:
    stream = client(gateway).chat.completions.create(
        model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello, world!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 7


def test_the_conversation_goes_upstream_as_sent(gateway: Running, ollama_env: FakeOllama) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    client(gateway).chat.completions.create(model=MODEL, messages=messages, temperature=0.2)  # type: ignore[arg-type]
    sent = ollama_env.chat_requests[-1].json
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "Be brief."), ("user", "first"), ("assistant", "answer"), ("user", "second"),
    ]  # fmt: skip
    assert sent["options"]["temperature"] == 0.2


def test_no_system_prompt_is_added_to_a_clients_conversation(
    gateway_factory: object, ollama_env: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTAN_SYSTEM", "the terminal's own system prompt")
    running: Running = gateway_factory()  # type: ignore[operator]
    client(running).chat.completions.create(model=MODEL, messages=HI)
    assert [m["role"] for m in ollama_env.chat_requests[-1].json["messages"]] == ["user"]


def test_the_models_of_every_provider_and_the_aliases(
    gateway_factory: object, ollama_env: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    running: Running = gateway_factory()  # type: ignore[operator]
    ids = [m.id for m in client(running).models.list()]
    assert "ollama:llama3.2:latest" in ids and "ollama:qwen2.5-coder:7b" in ids


def test_routing_to_an_openai_upstream_with_its_own_key(
    gateway_factory: object, openai_env: FakeOpenAI
) -> None:
    running: Running = gateway_factory()  # type: ignore[operator]
    reply = client(running).chat.completions.create(model="openai:gpt-4o-mini", messages=HI)
    assert reply.choices[0].message.content == "Hello, world!"
    # The gateway's token never goes upstream: the provider's own key does.
    assert openai_env.chat_requests[-1].headers["authorization"] == "Bearer sk-test-key"


def test_a_failure_mid_stream_is_an_error_event_the_sdk_raises(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["a", "b", "c"], fault="close_mid_stream", fault_after=1))
    stream = client(gateway).chat.completions.create(model=MODEL, messages=HI, stream=True)
    with pytest.raises(openai.APIError, match="closed the connection"):
        for _ in stream:
            pass
    (conversation,) = gateway.conversations()
    assert [m.status for m in gateway.messages(conversation.id)] == ["complete", "failed"]


def test_a_failure_has_the_same_code_streamed_or_whole(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    # Before: a streamed error's code was always "upstream", whatever the whole answer's was.
    codes = []
    for stream in (False, True):
        ollama_env.queue(Reply(pieces=["a", "b"], fault="malformed_line", fault_after=1))
        with pytest.raises(openai.APIError) as failed:
            _read_all(client(gateway), stream=stream)
        codes.append(failed.value.code)
    assert codes[0] == codes[1] == "bad_response"


def _read_all(sdk: openai.OpenAI, *, stream: bool) -> None:
    answer = sdk.chat.completions.create(model=MODEL, messages=HI, stream=stream)
    for _ in answer if stream else ():
        pass


def test_an_unknown_model_is_404_with_the_engines_sentence(gateway: Running) -> None:
    with pytest.raises(openai.NotFoundError, match="ollama pull"):
        client(gateway).chat.completions.create(model="ollama:nope", messages=HI, stream=True)


def test_a_dead_upstream_is_502_with_one_sentence(
    gateway_factory: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens on discard
    monkeypatch.setenv("CORTAN_RETRY__ATTEMPTS", "1")
    running: Running = gateway_factory()  # type: ignore[operator]
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError, match="cannot reach Ollama") as caught:
            client(running).chat.completions.create(model=MODEL, messages=HI, stream=stream)
        assert caught.value.status_code == 502


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"model": "x"}', 400, "`messages` must be a non-empty list"),
        (b'{"messages": [{"role": "tool", "content": "x"}]}', 400, "tool calls are not supported"),
        (b'{"messages": [{"role": "user", "content": "x"}], "tools": [{}]}', 400, "`tools`"),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 3}', 400, "`n` must be 1"),
        (b'{"messages": [{"role": "assistant", "content": "x"}]}', 400, "must be the user's"),
        (b'{"messages": [{"role": "user", "content": 5}]}', 400, "must be a string"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', 400,
         "must be a number"),
        (b'{"messages": [{"role": "user", "content": "  "}]}', 400,
         "the prompt is empty: the last message, the user's, has no text"),
    ],
)  # fmt: skip
def test_bad_bodies_get_400_and_one_sentence(
    gateway: Running, body: bytes, status: int, words: str
) -> None:
    reply = httpx.post(gateway.url + "/v1/chat/completions", content=body, headers=gateway.headers)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]["message"]


def test_too_many_messages_is_413(gateway_factory: object, ollama_env: FakeOllama) -> None:
    running: Running = gateway_factory(max_messages=3)  # type: ignore[operator]
    with pytest.raises(openai.APIStatusError, match="over the gateway's limit of 3") as caught:
        client(running).chat.completions.create(model=MODEL, messages=HI * 4)
    assert caught.value.status_code == 413


def test_an_oversized_body_is_refused_whether_or_not_it_says_its_length(
    gateway_factory: object, ollama_env: FakeOllama
) -> None:
    running: Running = gateway_factory(max_body_bytes=4096)  # type: ignore[operator]
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * 10_000 + b'"}]}'
    url = running.url + "/v1/chat/completions"
    said = httpx.post(url, content=big, headers=running.headers)
    unsaid = httpx.post(url, content=iter([big[:3000], big[3000:]]), headers=running.headers)
    for reply in (said, unsaid):
        assert reply.status_code == 413
        assert "4096 byte limit" in reply.json()["error"]["message"]


def test_the_clients_mistakes_are_400_not_the_gateways_500(gateway: Running) -> None:
    """Kinds were looked up by class name (``UsageError``): a bad name was a 500."""
    with pytest.raises(openai.BadRequestError) as raised:
        client(gateway).chat.completions.create(model="ollama:", messages=HI)
    assert (raised.value.code, raised.value.type) == ("usage", "invalid_request_error")
    assert raised.value.message.endswith("model name 'ollama:' has a provider but no model")


def test_an_upstreams_wait_reaches_the_client_as_retry_after(
    gateway_factory: Any, ollama_env: FakeOllama, openai_env: FakeOpenAI
) -> None:
    """The upstream's 429 came back without Retry-After: the SDK retried at once."""
    from tests.serve.test_streams import ws_chat

    running: Running = gateway_factory()
    limited = Reply(status=429, error="slow down", headers={"retry-after": "120"})
    openai_env.queue(limited)
    with client(running) as oai, pytest.raises(openai.RateLimitError) as raised:
        oai.chat.completions.create(model="openai:gpt-4o-mini", messages=HI)
    assert raised.value.response.headers["retry-after"] == "120"
    assert "asks to wait 120 s" in raised.value.message
    openai_env.queue(limited)
    chat = {"type": "chat", "id": "c1", "model": "openai:gpt-4o-mini", "prompt": "hi"}
    # Another gateway: this one holds the provider's requests back for those 120 s.
    assert ws_chat(gateway_factory(), [chat])[-1]["error"]["retry_after"] == 120
