"""Generation options through the gateway: each API's names reach either upstream.

A client of the OpenAI API may be answered by an Ollama server and the other way
round; what it asked for must arrive in the upstream's own names, and what the
gateway cannot carry is refused (400 naming it) or dropped with ``X-Cortan-Notice``
(docs/serve.md has the table). Real clients over real sockets, fake upstreams.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.serve.conftest import Running
from tests.serve.test_streams import ws_chat
from tests.servers import FakeOllama, FakeOpenAI

OLLAMA = "ollama:llama3.2:latest"
OPENAI = "openai:gpt-4o-mini"
HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def both(ollama_env: FakeOllama, openai_env: FakeOpenAI, gateway_factory: Any) -> Running:
    """A gateway in front of both fake upstreams."""
    running: Running = gateway_factory()
    return running


def chat(running: Running, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(running.url + path, json=body, headers=running.headers, timeout=20)


def test_openai_clients_options_reach_ollama_in_its_names(
    both: Running, ollama_env: FakeOllama
) -> None:
    body = {
        "model": OLLAMA, "messages": HI, "temperature": 0.1, "top_p": 0.9, "seed": 4,
        "max_completion_tokens": 30, "stop": ["END"], "presence_penalty": 0.5,
        "frequency_penalty": 0.25, "top_k": 7,
    }  # fmt: skip
    reply = chat(both, "/v1/chat/completions", body)
    assert reply.status_code == 200, reply.text
    assert "x-cortan-notice" not in reply.headers
    options = ollama_env.chat_requests[-1].json["options"]
    assert {k: v for k, v in options.items() if k != "num_ctx"} == {
        "temperature": 0.1, "top_p": 0.9, "seed": 4, "num_predict": 30, "stop": ["END"],
        "presence_penalty": 0.5, "frequency_penalty": 0.25, "top_k": 7,
    }  # fmt: skip


def test_ollama_clients_options_reach_openai_in_its_names(
    both: Running, openai_env: FakeOpenAI
) -> None:
    options = {"num_predict": 12, "top_k": 3, "presence_penalty": 0.5, "repeat_last_n": 32}
    body = {"model": OPENAI, "messages": HI, "stream": False, "options": options}
    reply = chat(both, "/api/chat", body)
    assert reply.status_code == 200, reply.text
    sent = openai_env.chat_requests[-1].json
    assert (sent["max_tokens"], sent["top_k"], sent["presence_penalty"]) == (12, 3, 0.5)
    assert sent["repeat_last_n"] == 32 and "num_predict" not in sent


def test_keep_alive_reaches_ollama(both: Running, ollama_env: FakeOllama) -> None:
    body = {"model": OLLAMA, "messages": HI, "stream": False, "keep_alive": "10m"}
    assert chat(both, "/api/chat", body).status_code == 200
    assert ollama_env.chat_requests[-1].json["keep_alive"] == "10m"


def test_what_no_upstream_takes_is_dropped_with_a_notice(
    both: Running, ollama_env: FakeOllama
) -> None:
    body = {"model": OLLAMA, "messages": HI, "user": "u-1", "metadata": {"a": "b"}, "stream": True}
    reply = chat(both, "/v1/chat/completions", body)
    assert reply.status_code == 200, reply.text
    assert "did not pass on user, metadata" in reply.headers["x-cortan-notice"]
    body = {"model": OLLAMA, "messages": HI, "stream": False, "options": {"use_mmapp": True}}
    reply = chat(both, "/api/chat", body)
    assert "did not pass on options.use_mmapp" in reply.headers["x-cortan-notice"]
    assert "use_mmapp" not in ollama_env.chat_requests[-1].json.get("options", {})


def test_generates_own_fields_sent_to_a_chat_are_dropped_with_a_notice(
    both: Running, ollama_env: FakeOllama
) -> None:
    # Before: a top-level `images` (or `prompt`, `suffix`) on /api/chat went nowhere in silence.
    body = {"model": OLLAMA, "messages": HI, "stream": False, "images": ["aGk="], "prompt": "x"}
    reply = chat(both, "/api/chat", body)
    assert reply.status_code == 200, reply.text
    assert "did not pass on images, prompt" in reply.headers["x-cortan-notice"]
    assert [m["content"] for m in ollama_env.chat_requests[-1].json["messages"]] == ["hi"]


def test_ollamas_switches_reach_ollama(both: Running, ollama_env: FakeOllama) -> None:
    options = {"use_mmap": False, "numa": True, "vocab_only": False}
    body = {"model": OLLAMA, "messages": HI, "stream": False, "options": options}
    reply = chat(both, "/api/chat", body)
    assert reply.status_code == 200, reply.text
    assert "x-cortan-notice" not in reply.headers
    sent = ollama_env.chat_requests[-1].json["options"]
    assert (sent["use_mmap"], sent["numa"], sent["vocab_only"]) == (False, True, False)


def test_a_switch_must_be_a_json_boolean(both: Running, ollama_env: FakeOllama) -> None:
    body = {"model": OLLAMA, "messages": HI, "options": {"use_mlock": "yes"}}
    reply = chat(both, "/api/chat", body)
    assert reply.status_code == 400
    assert "option 'use_mlock' must be true or false" in reply.json()["error"]
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("logit_bias", {"50256": -100}), ("top_logprobs", 3), ("modalities", ["text", "audio"])],
)
def test_what_would_change_the_answer_is_refused_by_name(
    both: Running, ollama_env: FakeOllama, field: str, value: object
) -> None:
    reply = chat(both, "/v1/chat/completions", {"model": OLLAMA, "messages": HI, field: value})
    assert reply.status_code == 400
    assert f"`{field}`" in reply.json()["error"]["message"]
    assert ollama_env.chat_requests == []


def test_a_bad_value_is_refused_by_the_name_the_client_used(
    both: Running, ollama_env: FakeOllama
) -> None:
    body = {"model": OLLAMA, "messages": HI, "options": {"num_predict": 2.5}}
    reply = chat(both, "/api/chat", body)
    assert reply.status_code == 400
    assert "option 'num_predict' must be a whole number" in reply.json()["error"]
    assert ollama_env.chat_requests == []


def test_the_websocket_says_what_it_dropped_first(both: Running, ollama_env: FakeOllama) -> None:
    events = ws_chat(
        both,
        [{"type": "chat", "id": "c", "model": OLLAMA, "prompt": "hi",
          "options": {"num_predict": 3, "low_vrams": True}}],
    )  # fmt: skip
    assert events[0]["type"] == "notice" and "options.low_vrams" in events[0]["text"]
    assert events[-1]["status"] == "finished"
    assert ollama_env.chat_requests[-1].json["options"]["num_predict"] == 3


def test_an_option_the_upstream_refused_is_told_to_http_clients(
    both: Running, openai_env: FakeOpenAI
) -> None:
    """The engine's notice (asked again without the option) reaches the HTTP APIs too."""
    openai_env.refuse_fields = {"temperature": "unsupported_value"}
    body = {"model": OPENAI, "messages": HI, "temperature": 0.2}
    reply = chat(both, "/v1/chat/completions", body)
    assert reply.status_code == 200, reply.text
    (told,) = reply.json()["cortan"]["notices"]
    assert "refused temperature (0.2)" in told
    assert reply.headers["x-cortan-notice"] == told
    assert "temperature" not in openai_env.chat_requests[-1].json
