"""A secret given to a local model is scanned before the conversation goes remote.

The guard used to scan the new prompt only: a key pasted into a conversation with a
local model went out unscanned when ``--session`` (or ``-c``) continued it on a remote
provider, as history. Every earlier turn is scanned now whenever the request may reach
a provider that is not local. ``-s`` text is cleaned of control characters as the
prompt is, and the cleaned text is what is scanned and sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI

AWS_KEY = "AKIAZ7X3Q2LBM4HN5KTD"
GITHUB = "ghp_" + "R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s12"


@pytest.fixture
def remote(config_file: Path, openai_server: FakeOpenAI, ollama_env: FakeOllama) -> FakeOpenAI:
    """The fake OpenAI server configured as a remote provider (``local = false``)."""
    config_file.write_text(
        f'[providers.openai]\nkind = "openai"\nbase_url = "{openai_server.url}/v1"\n'
        'api_key_env = "OPENAI_API_KEY"\nlocal = false\n'
    )
    return openai_server


ENV = {"OPENAI_API_KEY": "sk-test-key", "CORTAN_RETRY__ATTEMPTS": "1"}


@pytest.mark.parametrize("secret", [AWS_KEY, f"export GITHUB_TOKEN={GITHUB}"], ids=["aws", "gh"])
@pytest.mark.parametrize("how", ["--session", "-c"])
def test_local_secret_is_scanned_when_the_conversation_goes_remote(
    cortan: type[CortanRunner], remote: FakeOpenAI, secret: str, how: str
) -> None:
    session = ["--session", "work"] if how == "--session" else []
    first = cortan.run(
        "ask", "--no-stdin", *session, "-m", "ollama:llama3.2:latest", f"keep {secret} safe"
    )
    assert first.code == 0, first.stderr  # a local model: not scanned, as before
    cont = session or ["-c"]
    result = cortan.run("ask", "--no-stdin", *cont, "-m", "openai:gpt-4o-mini", "go on", env=ENV)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "message 1 of the conversation" in result.stderr
    assert "provider 'openai' is not local" in result.stderr
    assert secret not in result.stderr
    assert remote.chat_requests == []
    allowed = cortan.run(
        "ask",
        "--no-stdin",
        *cont,
        "-m",
        "openai:gpt-4o-mini",
        "--allow-secrets",
        "go on",
        env=ENV,
    )
    assert allowed.code == 0, allowed.stderr
    assert len(remote.chat_requests) == 1


def test_a_clean_history_goes_remote(cortan: type[CortanRunner], remote: FakeOpenAI) -> None:
    first = cortan.run("ask", "--no-stdin", "--session", "w", "-m", "ollama:llama3.2:latest", "hi")
    assert first.code == 0
    result = cortan.run(
        "ask", "--no-stdin", "--session", "w", "-m", "openai:gpt-4o-mini", "more", env=ENV
    )
    assert result.code == 0, result.stderr
    sent = remote.chat_requests[0].json["messages"]
    assert [m["content"] for m in sent] == ["hi", "Hello, world!", "more"]


def test_system_prompt_loses_its_control_characters(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "--no-stdin", "-s", "be \x1b[2Jbrief\x07\x9b now\r\nplease", "hello")
    assert result.code == 0, result.stderr
    system = ollama_env.chat_requests[0].json["messages"][0]
    assert system == {"role": "system", "content": "be [2Jbrief now\nplease"}


def test_system_prompt_secret_is_found_through_controls(
    cortan: type[CortanRunner], remote: FakeOpenAI
) -> None:
    split = AWS_KEY[:8] + "\x01" + AWS_KEY[8:]  # a control hiding a key from the scan
    result = cortan.run(
        "ask", "--no-stdin", "-m", "openai:gpt-4o-mini", "-s", f"key {split}", "x", env=ENV
    )
    assert result.code == 1
    assert "the system prompt" in result.stderr
    assert remote.chat_requests == []
