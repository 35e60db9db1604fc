"""Providers end to end: fallback, several hosts, retries, named providers and their keys.

The installed ``cortan`` against loopback servers; a dead host is a bound port
nobody listens on, so connecting is refused at once.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI, Reply

FAST_RETRIES = {"CORTAN_RETRY__BASE_DELAY": "0.01"}


@pytest.fixture
def dead_url() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def dead_ollama(
    dead_url: str, openai_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAI:
    """Ollama (the default) is down; OpenAI answers; the global fallback names it."""
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    monkeypatch.setenv("CORTAN_DEFAULT_MODEL", "ollama:llama3.2")
    monkeypatch.setenv("CORTAN_FALLBACK", '["openai:gpt-4o-mini"]')
    return openai_env


def test_fallback_answers_and_says_so_in_one_dim_line(
    cortan: type[CortanRunner], dead_ollama: FakeOpenAI, dead_url: str
) -> None:
    result = cortan.run("ask", "hi", env=FAST_RETRIES)
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert result.stderr == (
        f"cortan: ollama:llama3.2 failed (cannot reach Ollama at {dead_url}: is `ollama serve` "
        "running?); answered by openai:gpt-4o-mini\n"
    )
    assert len(dead_ollama.chat_requests) == 1


def test_json_names_the_model_that_answered(
    cortan: type[CortanRunner], dead_ollama: FakeOpenAI
) -> None:
    report = json.loads(cortan.run("ask", "--json", "hi", env=FAST_RETRIES).stdout)
    assert (report["provider"], report["model"]) == ("openai", "gpt-4o-mini")


def test_no_fallback_flag(cortan: type[CortanRunner], dead_ollama: FakeOpenAI) -> None:
    result = cortan.run("ask", "--no-fallback", "hi", env=FAST_RETRIES)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "cannot reach Ollama" in result.stderr
    assert dead_ollama.chat_requests == []


def test_per_alias_fallback_from_the_config_file(
    cortan: type[CortanRunner], config_file: Path, ollama: FakeOllama, dead_url: str
) -> None:
    config_file.write_text(
        'default_model = "fast"\n'
        '[aliases]\nfast = "gpu:llama3.2"\n'
        '[fallbacks]\nfast = ["ollama:qwen2.5-coder:7b"]\n'
        f'[providers.gpu]\nkind = "ollama"\nhosts = ["{dead_url}"]\n'
        f'[providers.ollama]\nkind = "ollama"\nhosts = ["{ollama.url}"]\n'
    )
    result = cortan.run("ask", "hi", env={"CORTAN_RETRY__ATTEMPTS": "1"})
    assert result.code == 0, result.stderr
    assert "answered by ollama:qwen2.5-coder:7b" in result.stderr
    assert ollama.chat_requests[0].json["model"] == "qwen2.5-coder:7b"


def test_two_hosts_with_one_down(
    cortan: type[CortanRunner], config_file: Path, ollama: FakeOllama, dead_url: str
) -> None:
    config_file.write_text(
        'default_model = "gpu:llama3.2"\n'
        f'[providers.gpu]\nkind = "ollama"\nhosts = ["{dead_url}", "{ollama.url}"]\n'
    )
    result = cortan.run("ask", "hi")
    assert (result.code, result.stdout, result.stderr) == (0, "Hello, world!\n", "")
    assert len(ollama.chat_requests) == 1


def test_rate_limit_waits_as_told_then_answers(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    openai_env.queue(Reply(status=429, headers={"retry-after": "0.3"}))
    result = cortan.run("ask", "hi")
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    first, second = openai_env.chat_requests
    assert second.received_at - first.received_at >= 0.3


def test_server_error_then_success_is_one_whole_answer(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    openai_env.queue(Reply(status=500, error="boom"))
    result = cortan.run("ask", "hi", env=FAST_RETRIES)
    assert (result.code, result.stdout) == (0, "Hello, world!\n")
    assert len(openai_env.chat_requests) == 2


def test_no_retry_once_the_answer_began(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["Hel", "lo"], fault="close_mid_stream", fault_after=1))
    result = cortan.run("ask", "hi", env=FAST_RETRIES)
    assert result.code == 1
    assert result.stdout == "Hel\n"
    assert_one_sentence(result.stderr)
    assert len(ollama_env.chat_requests) == 1


# -- named providers and whose key goes where ------------------------------------------------


@pytest.fixture
def named(
    config_file: Path, openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAI:
    """Three OpenAI-compatible providers on one recording server; any key is accepted."""
    openai_server.api_key = None
    url = f"{openai_server.url}/v1"
    config_file.write_text(
        f'[providers.work]\nkind = "openai"\nbase_url = "{url}"\napi_key_env = "WORK_KEY"\n'
        f'[providers.lab]\nkind = "openai"\nbase_url = "{url}"\n'
        f'[providers.proxy]\nkind = "openai"\nbase_url = "{url}"\napi_key_env = "OPENAI_API_KEY"\n'
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-only-for-openai")
    monkeypatch.setenv("WORK_KEY", "sk-work-key")
    return openai_server


def test_a_named_provider_sends_its_own_key(cortan: type[CortanRunner], named: FakeOpenAI) -> None:
    result = cortan.run("ask", "-m", "work:gpt-4o", "hi")
    assert result.code == 0, result.stderr
    assert named.chat_requests[0].headers["authorization"] == "Bearer sk-work-key"


def test_the_openai_key_never_goes_to_a_custom_url_uninvited(
    cortan: type[CortanRunner], named: FakeOpenAI
) -> None:
    assert cortan.run("ask", "-m", "lab:gpt-4o", "hi").code == 0
    assert cortan.run("ask", "-m", "proxy:gpt-4o", "hi").code == 0
    lab, proxy = (r.headers.get("authorization", "") for r in named.chat_requests)
    assert "sk-openai-only-for-openai" not in lab
    assert proxy == "Bearer sk-openai-only-for-openai"  # it named the variable itself


# -- cortan models ----------------------------------------------------------------------------


def test_models_shows_aliases_and_where_they_lead(
    cortan: type[CortanRunner], config_file: Path, ollama: FakeOllama, dead_url: str
) -> None:
    config_file.write_text(
        'default_model = "fast"\nfallback = ["ollama:qwen2.5-coder:7b"]\n'
        '[aliases]\nfast = "ollama:llama3.2"\nbig = "ollama:llama3.3:70b"\n'
        f'[providers.ollama]\nkind = "ollama"\nhosts = ["{ollama.url}"]\n'
    )
    table = cortan.run("models")
    assert table.code == 0, table.stderr
    rows = {line.split()[0]: line.split()[1:] for line in table.stdout.splitlines() if line}
    assert rows["fast"] == ["ollama:llama3.2", "yes", "ollama:qwen2.5-coder:7b"]
    assert rows["big"] == ["ollama:llama3.3:70b", "no", "ollama:qwen2.5-coder:7b"]
    report = json.loads(cortan.run("models", "--json").stdout)
    assert [m["name"] for m in report["models"]] == ["llama3.2:latest", "qwen2.5-coder:7b"]
    assert report["names"][0] == {
        "name": "(default)",
        "resolves_to": "ollama:llama3.2",
        "available": True,
        "fallback": ["ollama:qwen2.5-coder:7b"],
        "error": None,
    }


@pytest.mark.parametrize("where", ["env", "file"])
def test_the_built_in_providers_need_no_kind_to_be_changed(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    dead_url: str,
    config_file: Path,
    where: str,
) -> None:
    """`[providers.ollama]` with hosts alone was refused: "key providers.ollama.kind is
    required", for a provider that exists without any config and is named for its kind."""
    env = {"OLLAMA_HOST": dead_url}  # the hosts set below must win over it
    hosts = json.dumps([ollama_env.url])
    if where == "env":
        env["CORTAN_PROVIDERS__OLLAMA__HOSTS"] = hosts
    else:
        config_file.write_text(f"[providers.ollama]\nhosts = {hosts}\n")
    result = cortan.run("ask", "--no-stdin", "hi", env=env)
    assert result.code == 0, result.stderr
    assert len(ollama_env.chat_requests) == 1


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_a_built_in_table_that_sets_only_a_rate_limit_keeps_the_environment(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    openai_env: FakeOpenAI,
    config_file: Path,
    kind: str,
) -> None:
    """docs/configuration.md's own `[providers.openai.rate_limit]` made OpenAI say
    "needs an API key: set OPENAI_API_KEY" with it set, and `[providers.ollama.rate_limit]`
    sent every request to 127.0.0.1:11434 instead of OLLAMA_HOST."""
    config_file.write_text(f"[providers.{kind}.rate_limit]\nrequests_per_minute = 500\n")
    server = ollama_env if kind == "ollama" else openai_env
    model = "ollama:llama3.2" if kind == "ollama" else "openai:gpt-4o-mini"
    result = cortan.run("ask", "--no-stdin", "-m", model, "hi")
    assert (result.code, result.stdout) == (0, "Hello, world!\n"), result.stderr
    assert len(server.chat_requests) == 1
    if kind == "openai":
        assert server.chat_requests[0].headers["authorization"] == "Bearer sk-test-key"
