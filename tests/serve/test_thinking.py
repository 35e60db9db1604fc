"""A thinking model behind the gateway: its reasoning streams as it comes, and clients
may turn it on, off or to a level with their own API's field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.serve.conftest import Running
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
