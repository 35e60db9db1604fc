"""Secrets in plain sight (issue 15, class 3): a key or a URL password a server echoes back.

A server's error body may repeat the request's API key, and a base URL may carry
``user:password@``; neither may reach stderr, ``--json`` or the store. Checked over
loopback with the real SDKs, for errors before the answer and in the middle of it.
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI, Reply

KEY = "sk-" + "live-4f9a0c2e7b1d83a6e5f4"  # built at run time: not a literal in the repo
PASSWORD = "hunter2-" + "correct-horse"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=400, error=f"bad request for key {KEY}"),
        Reply(status=429, error=f"slow down, {KEY}", headers={"retry-after": "0"}),
        Reply(status=500, error=f"upstream rejected {KEY}"),
        Reply(fault="error_in_stream", fault_after=1, error=f"mid-answer failure for {KEY}"),
    ],
    ids=["400", "429", "500", "in-stream"],
)
def test_a_key_echoed_by_the_server_is_redacted(
    cortan: type[CortanRunner], openai_server: FakeOpenAI, reply: Reply
) -> None:
    openai_server.api_key = KEY
    env = {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": openai_server.url + "/v1",
        "CORTAN_RETRY__ATTEMPTS": "1",
    }
    for flags in ([], ["--json"]):
        openai_server.queue(reply)
        result = cortan.run("ask", *flags, "-m", "openai:gpt-4o-mini", "hi", env=env)
        assert result.code == 1
        assert KEY not in result.stdout + result.stderr
        said = json.loads(result.stdout)["error"]["message"] if flags else result.stderr
        assert "[redacted]" in said
        if not flags:
            assert_one_sentence(result.stderr)


def test_a_password_in_the_base_url_is_never_printed(
    cortan: type[CortanRunner], ollama: FakeOllama
) -> None:
    host = ollama.url.replace("http://", f"http://cortan:{PASSWORD}@")
    ollama.queue(Reply(status=500, error="overloaded"))
    result = cortan.run(
        "ask", "--json", "hi", env={"OLLAMA_HOST": host, "CORTAN_RETRY__ATTEMPTS": "1"}
    )
    assert result.code == 1
    assert PASSWORD not in result.stdout + result.stderr
    assert ollama.url in json.loads(result.stdout)["error"]["message"]


@pytest.mark.parametrize("model", ["ollama:llama3.2", "openai:gpt-4o-mini"])
def test_a_loopback_provider_never_goes_through_a_proxy(
    cortan: type[CortanRunner], ollama_env: FakeOllama, openai_env: FakeOpenAI, model: str
) -> None:
    """cortan judges a loopback provider local (no secret guard): it must really be direct."""
    with socket.socket() as proxy:  # a proxy that would see the prompt and the key
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        address = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        env = {name: address for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")}
        result = cortan.run("ask", "-m", model, "hi", env=env)
        proxy.setblocking(False)
        with pytest.raises(BlockingIOError):
            proxy.accept()  # nobody came through the proxy
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
