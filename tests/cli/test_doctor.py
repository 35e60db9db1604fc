"""`cortan doctor` on a healthy setup and on broken ones."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI


def rows(stdout: str) -> dict[str, dict[str, Any]]:
    report = json.loads(stdout)
    return {f"{c['area']} {c['name']}": c for c in report["checks"]}


def test_healthy(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("doctor")
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    assert "version 0.12.0, 2 models" in result.stdout
    assert "ollama:llama3.2:latest is available" in result.stdout
    report = cortan.run("doctor", "--json")
    assert report.code == 0
    assert json.loads(report.stdout)["ok"] is True
    found = rows(report.stdout)
    host = found[f"provider ollama {ollama_env.url}"]
    assert host["status"] == "ok"
    assert (host["reachable"], host["version"], host["models"]) == (True, "0.12.0", 2)
    assert host["breaker"] == "closed"
    assert host["latency_ms"] >= 0
    assert found["model default model"]["status"] == "ok"
    (store,) = [c for c in found.values() if c["area"] == "store"]
    assert (store["status"], store["detail"], store["exists"]) == ("ok", "not created yet", False)
    terminal = found["terminal stdout"]
    assert terminal["terminal"] is False
    assert terminal["encoding"] == "utf-8"


def test_keys_are_reported_by_where_they_come_from(
    cortan: type[CortanRunner], ollama_env: FakeOllama, openai_server: FakeOpenAI, config_file: Path
) -> None:
    config_file.write_text(
        f'[providers.work]\nkind = "openai"\nbase_url = "{openai_server.url}/v1"\n'
        'api_key_env = "WORK_KEY"\nlocal = false\n'
    )
    result = cortan.run("doctor", "--json", env={"WORK_KEY": "sk-test-key"})
    assert result.code == 0, result.stderr
    found = rows(result.stdout)
    assert (found["key work"]["status"], found["key work"]["detail"]) == ("ok", "from env WORK_KEY")
    assert found["key openai"]["status"] == "warn"
    assert found["key openai"]["detail"] == (
        "no API key: set OPENAI_API_KEY or run `cortan keys set openai`"
    )
    assert found[f"provider work {openai_server.url}/v1"]["models"] == 2
    assert "sk-test-key" not in result.stdout


def test_a_hosts_latency_is_its_own_not_another_providers_sdk_import(
    cortan: type[CortanRunner], ollama_env: FakeOllama, openai_server: FakeOpenAI, config_file: Path
) -> None:
    """A loopback Ollama showed 835-1290 ms when an OpenAI host was configured beside it.

    The openai SDK (0.3-0.6 s to import) was imported inside one probe while the other
    probe's clock ran; every provider is now made before any host is timed. The bound is
    loose: a loopback answer takes a few milliseconds.
    """
    config_file.write_text(
        f'[providers.work]\nkind = "openai"\nbase_url = "{openai_server.url}/v1"\n'
    )
    result = cortan.run("doctor", "--json", env={"OPENAI_API_KEY": "sk-test"})
    assert result.code == 0, result.stderr
    assert rows(result.stdout)[f"provider ollama {ollama_env.url}"]["latency_ms"] < 250


def test_one_model_is_one_model(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    """A server with one model said "1 models"."""
    ollama_env.models.remove("qwen2.5-coder:7b")
    result = cortan.run("doctor")
    assert result.code == 0, result.stderr
    assert "version 0.12.0, 1 model, " in result.stdout


def test_model_not_pulled(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("doctor", env={"CORTAN_DEFAULT_MODEL": "ollama:mistral"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert (
        "cortan: error: the default model ollama:mistral cannot be used: ollama has no model "
        "'mistral' (run `cortan models pull mistral`)"
    ) in result.stderr


def test_default_host_down(cortan: type[CortanRunner]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        result = cortan.run("doctor", "--json", env={"OLLAMA_HOST": url})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert f"cannot be used: cannot reach Ollama at {url}" in result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    host = rows(result.stdout)[f"provider ollama {url}"]
    assert (host["status"], host["reachable"], host["failures"]) == ("warn", False, 1)


def test_an_unused_provider_down_is_only_a_warning(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path
) -> None:
    config_file.write_text('[providers.lab]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    result = cortan.run("doctor", "--json")
    assert result.code == 0, result.stderr
    assert rows(result.stdout)["provider lab http://127.0.0.1:9/v1"]["status"] == "warn"


def test_broken_config(cortan: type[CortanRunner], config_file: Path) -> None:
    config_file.write_text("default_model = \n")
    result = cortan.run("doctor")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "is not valid TOML" in result.stderr
    assert "terminal" in result.stdout  # the other checks still ran


def test_a_default_model_its_fallback_stands_in_for_is_a_warning(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """`doctor` failed on the default model even when its fallback answers (issue 21)."""
    env = {
        "CORTAN_DEFAULT_MODEL": "ollama:mistral",
        "CORTAN_FALLBACK": '["ollama:llama3.2:latest"]',
    }
    result = cortan.run("doctor", "--json", env=env)
    assert result.code == 0, result.stderr
    row = rows(result.stdout)["model default model"]
    assert row["status"] == "warn"
    assert "ollama has no model 'mistral'" in row["detail"]
    assert "its fallback ollama:llama3.2:latest answers instead" in row["detail"]
    report = json.loads(result.stdout)
    assert report["ok"] is True
