"""A client's schema through ``cortan serve``: checked within its bounds, beside the loop.

The real ``cortan serve`` in a process of its own (a check that never ends would hold the
test's own interpreter otherwise), the fake Ollama upstream, the openai SDK as client.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import CortanRunner
from tests.serve.test_cli import TOKEN, start
from tests.servers import FakeOllama, Reply

MODEL = "ollama:llama3.2:latest"
HI: Any = [{"role": "user", "content": "hi"}]
BACKTRACKS = "^(a|aa)+$"  # exponential in Python's re: days for 60 letters


@pytest.fixture
def served(cortan: type[CortanRunner], ollama_env: FakeOllama) -> Iterator[str]:
    """``cortan serve``'s URL; killed at the end if a SIGTERM cannot stop it (a thread
    caught in Python's re holds the interpreter)."""
    proc, url, _ = start(cortan, "--quiet")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


def ask(url: str, schema: dict[str, Any]) -> Any:
    client = openai.OpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0, timeout=20)
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    return client.chat.completions.create(model=MODEL, messages=HI, response_format=fmt)


def test_unevaluated_properties_patterns_are_matched_within_the_deadline(
    served: str, ollama_env: FakeOllama
) -> None:
    # Before: jsonschema matched them itself with Python's re: the gateway stopped
    # answering anyone (the check's thread held the interpreter), and the SDK timed out.
    ollama_env.queue(Reply(pieces=[json.dumps({"a" * 60 + "!": 1})]))
    schema = {"unevaluatedProperties": False, "patternProperties": {BACKTRACKS: {}}}
    begun = time.monotonic()
    with pytest.raises(openai.APIStatusError) as raised:
        ask(served, schema)
    assert raised.value.status_code == 502
    assert f"matching the pattern {BACKTRACKS!r} took too long" in raised.value.message
    assert time.monotonic() - begun < 10
    assert httpx.get(served + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "schema",
    [
        # jsonschema's own check of 40,000 properties: about 10 s
        {"properties": {f"p{n}": {"type": "string", "minLength": 1} for n in range(40_000)}},
        # 600 patterns regex compiles in about 7 ms each
        {"properties": {f"p{n}": {"pattern": f"(a{{990}}){{10}}x{n}"} for n in range(600)}},
    ],
    ids=["properties", "patterns"],
)
def test_other_clients_are_answered_while_a_schema_is_checked(
    served: str, schema: dict[str, Any]
) -> None:
    # Before: the check ran on the event loop: /health waited 9.8 s (0.9 MB of
    # properties) and 7.7 s (4 KB of patterns) against 7 ms idle.
    replies: list[BaseException] = []

    def asking() -> None:
        try:
            ask(served, schema)
        except openai.APIError as exc:
            replies.append(exc)

    thread = threading.Thread(target=asking)
    waits = []
    with httpx.Client(timeout=30) as client:
        client.get(served + "/health")  # connected before the clock starts
        thread.start()
        while thread.is_alive():
            begun = time.monotonic()
            client.get(served + "/health")
            waits.append(time.monotonic() - begun)
            with contextlib.suppress(RuntimeError):
                thread.join(0.02)
    # The count tells the two apart: a check on the loop held the first /health for all of
    # it. The bound on each wait is a quarter of that hold, loose for a slow machine.
    assert len(waits) >= 5, waits  # asked while the schema was checked
    assert max(waits) < 2.0, waits
    (refused,) = replies
    assert isinstance(refused, openai.BadRequestError), refused
    assert "the schema cannot be used: checking took more than 1 s" in refused.message
