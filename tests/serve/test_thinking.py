"""A thinking model behind the gateway: its reasoning streams as it comes, and clients
may turn it on, off or to a level with their own API's field."""

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
HI: Any = [{"role": "user", "content": "hi"}]
#: Reasons, then never answers: only reasoning can reach the client.
STILL_THINKING = Reply(thinking=["Let me", " think."], pieces=["4"], fault="never_end",
                       fault_after=0)  # fmt: skip


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/chat/completions", "reasoning_content"), ("/api/chat", "thinking")],
)
def test_reasoning_streams_before_the_answer_begins(
    gateway: Running, ollama_env: FakeOllama, path: str, field: str
) -> None:
    """A model thinking for minutes showed nothing until its answer began: held back."""
    ollama_env.queue(STILL_THINKING)
    body = {"model": MODEL, "messages": HI, "stream": True}
    lines = []
    with (
        httpx.Client(timeout=httpx.Timeout(5.0)) as http,
        http.stream("POST", gateway.url + path, json=body, headers=gateway.headers) as reply,
    ):
        assert reply.status_code == 200
        for line in reply.iter_lines():
            lines.append(line)
            if field in line:
                break
    assert any("Let me" in line for line in lines)


THINKER = Reply(thinking=["Let me", " think."], pieces=["4"])


def _sent_think(upstream: FakeOllama) -> object:
    """The ``think`` the last chat upstream was sent."""
    return upstream.chat_requests[-1].json["think"]


def test_an_ollama_client_turns_thinking_off_or_to_a_level(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """``think`` was dropped: ``think=False`` still had the model reason before answering."""
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers)) as client:
        ollama_env.queue(THINKER)
        reply = client.chat(model=MODEL, messages=HI, think=False)
        assert _sent_think(ollama_env) is False
        assert (reply.message.content, reply.message.thinking) == ("4", None)
        ollama_env.queue(THINKER)
        parts = list(client.generate(model=MODEL, prompt="hi", think="high", stream=True))
        assert _sent_think(ollama_env) == "high"
        assert "".join(p.thinking or "" for p in parts) == "Let me think."


@pytest.mark.parametrize(("effort", "think"), [("low", "low"), ("none", False)])
def test_an_openai_client_sets_the_reasoning_effort(
    gateway: Running, ollama_env: FakeOllama, effort: Any, think: object
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
    client.chat.completions.create(model=MODEL, messages=HI, reasoning_effort=effort)
    assert _sent_think(ollama_env) == think


def test_a_websocket_chat_sets_thinking_and_a_bad_word_is_refused(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(THINKER)
    chat = {"type": "chat", "id": "c1", "model": MODEL, "prompt": "2+2?", "think": False}
    events = ws_chat(gateway, [chat])
    assert _sent_think(ollama_env) is False
    assert [e["kind"] for e in events if e["type"] == "delta"] == ["text"]
    reply = httpx.post(
        gateway.url + "/api/chat", headers=gateway.headers,
        json={"model": MODEL, "messages": HI, "think": "lots"},
    )  # fmt: skip
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("`think` must be true, false, or one of none")


def test_each_client_is_told_its_model_cannot_think(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """A terminal hears it once; the gateway's clients may be another program each time,
    and one asking after another would get no thinking and no word why."""
    ollama_env.capabilities["llama3.2:latest"] = ["completion"]
    seen: list[httpx.Response] = []
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers,
                               event_hooks={"response": [seen.append]})) as client:  # fmt: skip
        for _ in range(2):
            ollama_env.queue(Reply(pieces=["4"]))
            reply = client.chat(model=MODEL, messages=HI, think=True, stream=False)
            assert reply.message.content == "4"
            assert "think" not in ollama_env.chat_requests[-1].json
            assert "does not think" in seen[-1].json()["cortan"]["notices"][0]
