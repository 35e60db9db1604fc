"""A request the engine raises on instead of ending: still answered, once, and said.

No input reaches such a fault now that bodies and settings refuse lone surrogates, so
the fault is set up here as it first came: settings replaced without validation (an
alias whose target holds a lone surrogate), which the real store then fails to encode.
Before, a whole answer was Starlette's bare 500, and a streamed one (HTTP or
WebSocket) never came at all: its writer waited for an ending that the dead task
would never give.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
import websockets

from cortan.serve.replies import FAULT
from tests.serve.conftest import Running

BROKEN = {"aliases": {"broken": "ollama:x\udc01"}}
BODY = {"model": "broken", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def faulty(gateway_factory: Any, ollama_env: Any) -> Running:
    running: Running = gateway_factory(unchecked=BROKEN)
    return running


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_a_fault_is_a_500_with_one_sentence_streamed_or_not(
    faulty: Running, caplog: pytest.LogCaptureFixture, path: str, stream: bool
) -> None:
    with caplog.at_level(logging.INFO, "cortan.serve.access"):
        reply = httpx.post(faulty.url + path, json={**BODY, "stream": stream},
                           headers=faulty.headers, timeout=10)  # fmt: skip
    assert reply.status_code == 500
    error = reply.json()["error"]
    assert (error["message"] if isinstance(error, dict) else error) == FAULT
    said = [r.getMessage() for r in caplog.records if r.name == "cortan.serve.access"]
    assert len(said) == 2  # the fault, then the request's own line
    assert "failed on an internal error: UnicodeEncodeError" in said[0]
    assert " failed model=" in said[1] and "error=internal" in said[1]
    # the gateway goes on: the next request is answered
    fine = {**BODY, "model": "", "stream": False}
    assert httpx.post(faulty.url + path, json=fine, headers=faulty.headers).status_code == 200


def test_a_fault_ends_a_websocket_chat_and_the_socket_goes_on(faulty: Running) -> None:
    async def main() -> list[list[dict[str, Any]]]:
        url = "ws" + faulty.url.removeprefix("http") + "/ws"
        chats = []
        async with websockets.connect(url, additional_headers=faulty.headers) as ws:
            for chat_id, model in (("bad", "broken"), ("good", "")):
                await ws.send(json.dumps({"type": "chat", "id": chat_id, "model": model,
                                          "prompt": "hi"}))  # fmt: skip
                events: list[dict[str, Any]] = []
                while not events or events[-1]["type"] not in ("end", "error"):
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                chats.append(events)
        return chats

    bad, good = asyncio.run(main())
    assert FAULT in json.dumps(bad[-1])
    assert good[-1]["type"] == "end"


@pytest.fixture
def unparseable(gateway_factory: Any, ollama_env: Any) -> Running:
    """A fault before the engine: a limit of the wrong type, which the endpoint's own
    reading of the body trips over (``len(messages) > "many"``)."""
    running: Running = gateway_factory(max_messages="many")
    return running


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat", "/api/generate"])
def test_a_fault_no_endpoint_caught_is_a_500_in_the_api_shape(
    unparseable: Running, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    # Before: Starlette's plain-text "Internal Server Error", no request id, nothing said.
    body = {**BODY, "model": "", "prompt": "hi"}
    with caplog.at_level(logging.INFO, "cortan.serve.access"):
        reply = httpx.post(unparseable.url + path, json=body, headers=unparseable.headers)
    assert reply.status_code == 500
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert (error["message"] if isinstance(error, dict) else error) == FAULT
    request_id = reply.headers["x-request-id"]
    said = [r.getMessage() for r in caplog.records if r.name == "cortan.serve.access"]
    assert f"request_id={request_id} failed on an internal error: TypeError" in said[0]
    metrics = httpx.get(unparseable.url + "/metrics", headers=unparseable.headers).text
    assert 'cortan_serve_errors_total{kind="internal"}' in metrics
    assert httpx.get(unparseable.url + "/v1/models", headers=unparseable.headers).is_success


def test_a_fault_in_a_websocket_message_is_an_error_event_and_the_socket_goes_on(
    unparseable: Running,
) -> None:
    async def main() -> list[dict[str, Any]]:
        url = "ws" + unparseable.url.removeprefix("http") + "/ws"
        async with websockets.connect(url, additional_headers=unparseable.headers) as ws:
            await ws.send(json.dumps({"type": "chat", "id": "c1", "messages": BODY["messages"]}))
            await ws.send(json.dumps({"type": "cancel", "id": "none"}))  # the socket goes on
            return [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]

    fault, after = asyncio.run(main())
    assert (fault["type"], fault["id"], fault["kind"], fault["message"]) == (
        "error", "c1", "internal", FAULT,
    )  # fmt: skip
    assert after["type"] == "error" and "nothing to cancel" in after["message"]
