"""The secret guard end to end: nothing that looks like a key leaves for a remote provider.

A loopback server counts as local, so these tests point the guard at the fake OpenAI
server by configuring it as ``local = false``, as docs/security.md tells users to do
for a tunnel or a proxy on localhost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortan.app import App
from cortan.config.load import load_settings
from cortan.core.events import ChatFailed, ChatFinished
from cortan.core.requests import Attachment, ChatRequest
from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI

AWS_KEY = "AKIAZ7X3Q2LBM4HN5KTD"
OPENAI_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab7cDe0fGh3iJk6lMn9oPq2rS"


@pytest.fixture
def remote(
    openai_server: FakeOpenAI, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAI:
    """The fake OpenAI server configured as provider ``work``, which says it is not local."""
    config_file.write_text(
        'default_model = "work:gpt-4o-mini"\n'
        "[providers.work]\n"
        'kind = "openai"\n'
        f'base_url = "{openai_server.url}/v1"\n'
        'api_key_env = "WORK_KEY"\n'
        "local = false\n"
    )
    config_file.chmod(0o600)
    monkeypatch.setenv("WORK_KEY", "sk-test-key")
    return openai_server


def assert_refused(result_stderr: str, code: int, server: FakeOpenAI | FakeOllama) -> None:
    assert code == 1
    assert_one_sentence(result_stderr)
    assert "pass --allow-secrets to send" in result_stderr
    assert server.chat_requests == []


def test_secret_on_stdin_is_refused_before_sending(
    cortan: type[CortanRunner], remote: FakeOpenAI
) -> None:
    result = cortan.run("ask", "summarise", input=f"notes\nAWS={AWS_KEY}\nmore\n")
    assert_refused(result.stderr, result.code, remote)
    assert "stdin line 2 looks like an AWS access key" in result.stderr
    assert "provider 'work' is not local" in result.stderr
    assert AWS_KEY not in result.stderr + result.stdout


def test_secret_in_the_prompt(cortan: type[CortanRunner], remote: FakeOpenAI) -> None:
    result = cortan.run("ask", "--no-stdin", f"why does {OPENAI_KEY} fail?")
    assert_refused(result.stderr, result.code, remote)
    assert "the prompt line 1 looks like an OpenAI API key" in result.stderr
    assert OPENAI_KEY[8:20] not in result.stderr


def test_secret_in_an_attached_file(
    cortan: type[CortanRunner], remote: FakeOpenAI, tmp_path: Path
) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("DEBUG=1\nDB_PASSWORD=s3cr3tP4ss\n")
    result = cortan.run("ask", "--no-stdin", "-f", str(env_file), "check this")
    assert_refused(result.stderr, result.code, remote)
    assert f"file {env_file} line 2 looks like a secret assigned to DB_PASSWORD" in result.stderr


def test_allow_secrets_sends_it(cortan: type[CortanRunner], remote: FakeOpenAI) -> None:
    result = cortan.run("ask", "--allow-secrets", "summarise", input=f"AWS={AWS_KEY}\n")
    assert result.code == 0, result.stderr
    assert AWS_KEY in remote.chat_requests[0].json["messages"][-1]["content"]


def test_json_reports_the_refusal(cortan: type[CortanRunner], remote: FakeOpenAI) -> None:
    result = cortan.run("ask", "--json", "x", input=f"AWS={AWS_KEY}\n")
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["error"]["kind"] == "secret"
    assert AWS_KEY not in result.stdout


def test_a_loopback_provider_is_local(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("ask", "summarise", input=f"AWS={AWS_KEY}\n")
    assert result.code == 0, result.stderr
    assert AWS_KEY in ollama_env.chat_requests[0].json["messages"][-1]["content"]


def test_a_fallback_to_a_remote_provider_counts(
    cortan: type[CortanRunner], remote: FakeOpenAI, ollama: FakeOllama, config_file: Path
) -> None:
    config_file.write_text(
        config_file.read_text().replace(
            'default_model = "work:gpt-4o-mini"',
            'default_model = "ollama:llama3.2:latest"\nfallback = ["work:gpt-4o-mini"]',
        )
    )
    env = {"OLLAMA_HOST": ollama.url}
    refused = cortan.run("ask", "x", input=f"AWS={AWS_KEY}\n", env=env)
    assert_refused(refused.stderr, refused.code, remote)
    assert "provider 'work' is not local" in refused.stderr
    alone = cortan.run("ask", "--no-fallback", "x", input=f"AWS={AWS_KEY}\n", env=env)
    assert alone.code == 0, alone.stderr  # the local model alone: nothing leaves
    assert len(ollama.chat_requests) == 1


# -- the API the REPL uses: the refusal names the findings; a yes sends with allow_secrets --


async def test_repl_api_finds_then_sends_after_confirmation(remote: FakeOpenAI) -> None:
    app = App.build(load_settings())
    try:
        request = ChatRequest(
            1, "look at this", (Attachment("Input from stdin", f"x\nKEY={AWS_KEY}\n".encode()),)
        )
        refused = await app.ask(request)
        assert isinstance(refused, ChatFailed) and refused.kind == "secret"
        assert refused.message.startswith("stdin line 2 looks like an AWS access key, and ")
        assert refused.sent is None  # nothing left this machine
        sent = await app.ask(
            ChatRequest(2, request.prompt, request.attachments, allow_secrets=True)
        )
        assert isinstance(sent, ChatFinished)
    finally:
        await app.aclose()
    assert len(remote.chat_requests) == 1


async def test_repl_api_has_nothing_to_ask_for_a_local_model(ollama_env: FakeOllama) -> None:
    app = App.build(load_settings())
    try:
        ended = await app.ask(ChatRequest(1, f"key {AWS_KEY}"))
        assert isinstance(ended, ChatFinished)  # nothing to ask: the model is local
    finally:
        await app.aclose()
