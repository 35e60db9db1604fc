"""Back-pressure, disconnects, the Ollama API and the WebSocket: streams under strain."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import closing
from typing import Any

import httpx
import ollama
import pytest
import websockets

from tests.serve.conftest import TOKEN, Running
from tests.servers import FakeOllama, Reply

MODEL = "ollama:llama3.2:latest"
HI: Any = [{"role": "user", "content": "hi"}]
BODY = {"model": MODEL, "messages": HI, "stream": True}
SLOW = Reply(pieces=["piece "] * 200, delay=0.05)


class Stream:
    """A streamed request whose first piece has arrived; ``close`` hangs up."""

    def __init__(self, running: Running, body: dict[str, Any] = BODY) -> None:
        self.http = httpx.Client(timeout=10)
        request = self.http.build_request(
            "POST", running.url + "/v1/chat/completions", json=body, headers=running.headers
        )
        self.response = self.http.send(request, stream=True)
        assert self.response.status_code == 200
        self.chunks = self.response.iter_bytes()
        self.first = next(self.chunks)

    def rest(self) -> bytes:
        return b"".join(self.chunks)

    def close(self) -> None:
        self.response.close()
        self.http.close()


def test_a_client_that_disconnects_cancels_upstream_and_the_partial_is_kept(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(SLOW)
    Stream(gateway).close()
    assert ollama_env.wait_disconnect(timeout=2), "upstream never saw the client go"
    assert _wait_for(lambda: len(gateway.messages(1)) == 2)
    _, answer = gateway.messages(1)
    assert answer.status == "interrupted" and answer.content.startswith("piece")


def test_a_full_queue_is_429_with_retry_after(gateway_factory: Any, ollama_env: FakeOllama) -> None:
    running: Running = gateway_factory(streams_per_host=1, queue_per_host=1)
    ollama_env.queue(SLOW)
    first = Stream(running)  # holds the one slot
    waiting: dict[str, int] = {}

    def second() -> None:
        reply = httpx.post(running.url + "/v1/chat/completions", json={**BODY, "stream": False},
                           headers=running.headers, timeout=30)  # fmt: skip
        waiting["status"] = reply.status_code

    thread = threading.Thread(target=second)
    thread.start()
    assert _wait_for(lambda: 'queue_depth{provider="ollama"} 1.0' in _metrics(running))
    third = httpx.post(running.url + "/v1/chat/completions", json=BODY, headers=running.headers)
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) >= 1
    assert "queue is full" in third.json()["error"]["message"]
    first.close()  # the slot passes to the one waiting
    thread.join(20)
    assert waiting["status"] == 200


def test_the_ollama_api_streams_and_answers_whole(gateway: Running) -> None:
    with closing(
        ollama.Client(host=gateway.url, headers={"Authorization": f"Bearer {TOKEN}"})
    ) as c:
        parts = list(c.chat(model=MODEL, messages=HI, stream=True))
        assert "".join(p.message.content or "" for p in parts) == "Hello, world!"
        assert parts[-1].done and parts[-1].eval_count == 4 and parts[-1].done_reason == "stop"
        whole = c.chat(model=MODEL, messages=HI, options={"num_predict": 5, "temperature": 0})
        assert whole.message.content == "Hello, world!"
        assert [m.model for m in c.list().models][:1] == [MODEL]
        with pytest.raises(ollama.ResponseError, match="ollama pull") as caught:
            c.chat(model="ollama:nope", messages=HI)
        assert caught.value.status_code == 404
    version = httpx.get(gateway.url + "/api/version", headers=gateway.headers).json()
    assert version["version"].count(".") == 2


def test_the_ollama_api_passes_options_in_cortans_names(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    body = {**BODY, "stream": False, "options": {"num_predict": 5, "stop": "x"}}
    httpx.post(gateway.url + "/api/chat", json=body, headers=gateway.headers)
    options = ollama_env.chat_requests[-1].json["options"]
    assert options["num_predict"] == 5 and options["stop"] == ["x"]


def ws_chat(running: Running, messages: list[Any], *, cancel_after: int | None = None,
            headers: dict[str, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Events of one WebSocket session: send ``messages``, read until every chat ended."""

    async def main() -> list[dict[str, Any]]:
        url = "ws" + running.url.removeprefix("http") + "/ws"
        events: list[dict[str, Any]] = []
        async with websockets.connect(
            url, additional_headers=running.headers if headers is None else headers
        ) as ws:
            for message in messages:
                await ws.send(message if isinstance(message, str) else json.dumps(message))
            chats = {
                m.get("id") for m in messages if isinstance(m, dict) and m.get("type") == "chat"
            }
            ended = 0
            while ended < len(chats):
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                events.append(event)
                if event["type"] == "delta" and cancel_after == len(events):
                    await ws.send(json.dumps({"type": "cancel", "id": event["id"]}))
                ended += event["type"] in ("end", "error") and event.get("id") in chats
        return events

    return asyncio.run(main())


def test_a_cancel_of_no_running_chat_says_so(gateway: Running) -> None:
    # Before: no reply, so a client with a typo in the id waited on a chat that went on.
    chat = {"type": "chat", "id": "c1", "model": MODEL, "prompt": "hi"}
    events = ws_chat(gateway, [{"type": "cancel", "id": "c2"}, chat])
    (error,) = [e for e in events if e["type"] == "error"]
    assert error["id"] == "c2" and error["kind"] == "bad_message"
    assert "no chat with this id is running" in error["message"]
    assert events[-1]["type"] == "end" and events[-1]["status"] == "finished"


def test_a_websocket_chat_as_events(gateway: Running) -> None:
    events = ws_chat(gateway, [{"type": "chat", "id": "c1", "model": MODEL, "prompt": "hi"}])
    assert events[0]["type"] == "started" and events[0]["model"] == "llama3.2:latest"
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Hello, world!"
    end = events[-1]
    assert (
        end["type"] == "end"
        and end["status"] == "finished"
        and end["usage"]["completion_tokens"] == 4
    )


def test_a_websocket_chat_cancelled_by_the_client(gateway: Running, ollama_env: FakeOllama) -> None:
    ollama_env.queue(SLOW)
    chat = {"type": "chat", "id": "c1", "model": MODEL, "messages": HI}
    events = ws_chat(gateway, [chat], cancel_after=2)
    assert events[-1]["status"] == "cancelled" and events[-1]["content"].startswith("piece")
    assert ollama_env.wait_disconnect(timeout=2)


def test_websocket_messages_it_cannot_take(gateway: Running) -> None:
    events = ws_chat(gateway, ["{nope", json.dumps([1]), {"type": "dance", "id": "d"},
                               {"type": "chat", "id": "x"}])  # fmt: skip
    kinds = [(e["type"], e["kind"]) for e in events]
    assert kinds == [("error", "bad_json"), ("error", "bad_message"), ("error", "bad_message"),
                     ("error", "bad_request")]  # fmt: skip


def test_a_websocket_without_the_token_is_refused(gateway: Running) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        ws_chat(gateway, [], headers={})
    assert caught.value.response.status_code == 403


def test_a_browser_websocket_may_offer_the_token_as_a_subprotocol(gateway: Running) -> None:
    async def main() -> str | None:
        url = "ws" + gateway.url.removeprefix("http") + "/ws"
        protocols = ["cortan", f"bearer.{TOKEN}"]
        offered = [websockets.Subprotocol(p) for p in protocols]
        async with websockets.connect(url, subprotocols=offered) as ws:
            return ws.subprotocol

    assert asyncio.run(main()) == "cortan"


def test_stopping_drains_then_cancels_and_keeps_the_partial(
    gateway_factory: Any, ollama_env: FakeOllama
) -> None:
    running: Running = gateway_factory(drain_timeout=0.3)
    ollama_env.queue(SLOW)
    stream = Stream(running)
    running.stop_now()
    assert b"cortan serve is stopping" in stream.rest()
    stream.close()
    assert running.code == 0
    (answer,) = [m for m in running.messages(1) if m.role == "assistant"]
    assert answer.status == "interrupted"


def test_while_stopping_every_new_request_is_503_but_a_scrape(
    gateway_factory: Any, ollama_env: FakeOllama
) -> None:
    # Before: /v1/models, /api/tags and a new WebSocket were still served while the
    # gateway drained; only new chats were refused.
    running: Running = gateway_factory(drain_timeout=5)
    ollama_env.queue(SLOW)
    stream = Stream(running)
    assert running.loop is not None and running.stop is not None
    running.loop.call_soon_threadsafe(running.stop.set)
    assert _wait_for(lambda: httpx.get(running.url + "/health").status_code == 503)
    for path in ("/v1/models", "/api/tags", "/api/version"):
        reply = httpx.get(running.url + path, headers=running.headers)
        assert reply.status_code == 503, path
        assert "takes no new requests" in reply.text and reply.headers["retry-after"]
    assert httpx.get(running.url + "/metrics", headers=running.headers).status_code == 200

    async def handshake() -> None:
        url = "ws" + running.url.removeprefix("http") + "/ws"
        async with websockets.connect(url, additional_headers=running.headers):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatus):
        asyncio.run(handshake())
    stream.close()
    running.stop_now()
    assert running.code == 0


def _metrics(running: Running) -> str:
    return httpx.get(running.url + "/metrics", headers=running.headers).text


def _wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    from tests.conftest import wait_until

    return wait_until(predicate, timeout)


def test_thinking_crosses_the_gateway_apart_from_the_answer(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """A thinking model behind the gateway: each API carries the reasoning in its own field."""
    thinking = Reply(thinking=["Let me", " think."], pieces=["4"])
    ollama_env.queue(thinking)
    chat = {"type": "chat", "id": "c1", "model": MODEL, "prompt": "2+2?"}
    events = ws_chat(gateway, [chat])
    deltas = [(e["kind"], e["text"]) for e in events if e["type"] == "delta"]
    assert deltas == [("thinking", "Let me"), ("thinking", " think."), ("text", "4")]
    assert (events[-1]["content"], events[-1]["thinking"]) == ("4", "Let me think.")

    ollama_env.queue(thinking)
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers)) as client:
        parts = list(client.chat(model=MODEL, messages=HI, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == "Let me think."
    assert "".join(p.message.content or "" for p in parts) == "4"

    ollama_env.queue(thinking)
    with httpx.Client(timeout=10) as http:
        body = {**BODY, "stream": False}
        reply = http.post(gateway.url + "/v1/chat/completions", json=body, headers=gateway.headers)
    message = reply.json()["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("4", "Let me think.")


def test_the_ollama_generate_api_streams_answers_whole_and_loads(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    with closing(
        ollama.Client(host=gateway.url, headers={"Authorization": f"Bearer {TOKEN}"})
    ) as c:
        parts = list(c.generate(model=MODEL, prompt="hi", system="Be brief.", stream=True))
        assert "".join(p.response or "" for p in parts) == "Hello, world!"
        assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count == 4
        sent = ollama_env.chat_requests[-1].json["messages"]
        assert [(m["role"], m["content"]) for m in sent] == [
            ("system", "Be brief."), ("user", "hi"),
        ]  # fmt: skip
        whole = c.generate(model=MODEL, prompt="hi", options={"num_predict": 5})
        assert whole.response == "Hello, world!" and whole.done
        asked = len(ollama_env.chat_requests)
        loaded = c.generate(model=MODEL, prompt="")  # `ollama run` loads the model first
        assert loaded.done and loaded.done_reason == "load" and loaded.response == ""
        assert len(ollama_env.chat_requests) == asked  # nothing was asked of the model
    assert len(gateway.conversations()) == 2  # the two questions, not the load


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"prompt": "def f(", "suffix": "return x"}, "fill-in-the-middle"),
        ({"prompt": "hi", "context": [1, 2, 3]}, "/api/chat"),
        ({"prompt": "hi", "raw": True}, "chat template"),
        ({"prompt": 7}, "must be strings"),
        ({"prompt": "hi", "system": ["x"]}, "must be strings"),
        ({"prompt": "hi", "model": 5}, "`model` must be"),
    ],
)
def test_what_generate_cannot_carry_is_one_sentence(
    gateway: Running, body: dict[str, Any], said: str
) -> None:
    reply = httpx.post(gateway.url + "/api/generate", json=body, headers=gateway.headers)
    assert reply.status_code == 400
    assert said in reply.json()["error"]


def test_time_to_first_token_counts_requests_the_client_cancelled(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """An editor cancels most requests after their first pieces: none were measured."""
    ollama_env.queue(SLOW)
    Stream(gateway).close()
    assert _wait_for(lambda: 'outcome="cancelled"} 1.0' in _metrics(gateway))
    assert 'time_to_first_token_seconds_count{provider="ollama"} 1.0' in _metrics(gateway)


def test_an_ollama_chat_without_messages_loads_the_model(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """Ollama's preload (``messages: []``), as editors send it to warm a model, was 400."""
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers)) as client:
        loaded = client.chat(model=MODEL, messages=[])
    assert (loaded.done, loaded.done_reason, loaded.message.content) == (True, "load", "")
    assert ollama_env.chat_requests == [] and gateway.conversations() == []


def test_metrics_tell_the_streams_waiting_for_a_host_from_those_it_answers(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """Ollama answers one at a time: two streams showed, and no queue, with one upstream."""
    ollama_env.queue(SLOW, SLOW)
    first = Stream(gateway)
    waiting = threading.Thread(target=lambda: Stream(gateway).close())
    waiting.start()
    assert _wait_for(lambda: 'cortan_serve_streams{provider="ollama"} 2.0' in _metrics(gateway))
    host = f'{{host="{ollama_env.url}",provider="ollama"}}'
    assert f"cortan_serve_upstream_in_flight{host} 1.0" in _metrics(gateway)
    first.close()
    waiting.join(10)
