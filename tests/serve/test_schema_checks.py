"""Schemas built to take the whole check deadline, from many clients at once.

The gateway in its test thread, the fake Ollama upstream, the openai SDK and httpx as
clients. Each hostile schema takes its check's full second (600 patterns ``regex``
compiles in some 7 ms each); a small schema takes a few milliseconds.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai

from cortan.engine.bounds import DEADLINE
from tests.serve.conftest import TOKEN, Running
from tests.servers import FakeOllama, Reply

MODEL = "ollama:llama3.2:latest"
HI: Any = [{"role": "user", "content": "hi"}]


def _slow() -> Any:
    """A schema that takes its check's whole deadline, with patterns no other request
    sends: compiled patterns are cached, so ten clients sending one schema had it
    checked in full by the fifth, which then went upstream (seen on a loaded CI
    machine) and took the reply queued for another request."""
    nonce = next(_NONCES)
    return {
        "properties": {f"p{n}": {"pattern": f"(a{{990}}){{10}}x{n}y{nonce}"} for n in range(600)}
    }


_NONCES = itertools.count()
SMALL: Any = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
HOSTILE = 10
FLOOD = 50  # the clients of the small-schema test, as measured (23.9 s before)


def _body(schema: Any) -> dict[str, Any]:
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    return {"model": MODEL, "messages": HI, "response_format": fmt}


def _send_hostile(gateway: Running, done: list[tuple[float, httpx.Response]]) -> None:
    with httpx.Client(timeout=30) as client:
        reply = client.post(
            gateway.url + "/v1/chat/completions", json=_body(_slow()), headers=gateway.headers
        )
        done.append((time.monotonic(), reply))


def test_a_small_schema_is_checked_while_slow_ones_take_their_deadline(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    # Before: every check shared asyncio's default pool, first come first served; the
    # small schema's request waited for the slow ones ahead of it (with 50 of them,
    # 23.9 s against 8 ms idle).
    ollama_env.queue(Reply(pieces=['{"a": "x"}']))
    done: list[tuple[float, httpx.Response]] = []
    with ThreadPoolExecutor(FLOOD) as pool:
        for _ in range(FLOOD):
            pool.submit(_send_hostile, gateway, done)
        time.sleep(0.3)  # the slow checks have begun
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
        fmt: Any = _body(SMALL)["response_format"]
        sent = time.monotonic()
        reply = client.chat.completions.create(model=MODEL, messages=HI, response_format=fmt)
        took = time.monotonic() - sent
    assert reply.choices[0].message.content == '{"a": "x"}'
    refused = [r for _, r in done if r.status_code == 400]
    assert refused, [r.status_code for _, r in done]
    # Not queued behind the slow checks' deadlines (FLOOD seconds over a few threads). The
    # slow checks still share the interpreter's lock with it: regex compiles in C
    # holding it, so the small request is slowed, not stopped.
    assert took < 4 * DEADLINE  # on asyncio's default pool: 50 / 6 threads x 1 s, ~8 s


def test_slow_schemas_past_the_queue_are_503_with_retry_after(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    # Before: all ten queued for the default pool's threads and each was 400 in turn,
    # the last after seconds, while the others' checks waited behind them.
    done: list[tuple[float, httpx.Response]] = []
    threads = [threading.Thread(target=_send_hostile, args=(gateway, done)) for _ in range(HOSTILE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(r.status_code for _, r in done)
    assert 503 in statuses, statuses
    assert 400 in statuses, statuses  # those let in are checked, and refused
    busy = next(r for _, r in done if r.status_code == 503)
    assert int(busy.headers["retry-after"]) >= 1
    error = busy.json()["error"]
    assert error["code"] == "busy"
    assert "other long schemas: try again shortly" in error["message"]
    assert not ollama_env.chat_requests  # nothing was asked upstream
