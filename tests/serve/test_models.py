"""The model lists (``/v1/models``, ``/api/tags``) while one provider does not answer."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.serve.conftest import TOKEN, Running
from tests.servers import FakeOllama


@pytest.fixture
def stuck_host() -> Iterator[str]:
    """A host that takes the connection and never answers (a stuck Ollama)."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"


def test_a_provider_that_never_answers_does_not_hold_the_lists(
    gateway_factory: Any, ollama_env: FakeOllama, config_file: Path, stuck_host: str
) -> None:
    """Asked together, one stuck host held every listing for 15 s (the listing timeout)."""
    config_file.write_text(f'[providers.stuck]\nkind = "ollama"\nhosts = ["{stuck_host}"]\n')
    running: Running = gateway_factory()
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=TOKEN, max_retries=0)
    began = time.monotonic()
    names = [model.id for model in client.models.list()]
    with closing(ollama.Client(host=running.url, headers=running.headers)) as tags:
        listed = [model.model for model in tags.list().models]
    assert time.monotonic() - began < 10
    assert names == listed == ["ollama:llama3.2:latest", "ollama:qwen2.5-coder:7b"]


def test_the_openai_sdk_retrieves_one_model(gateway: Running) -> None:
    """``models.retrieve`` was 404 for every model, the listed ones too."""
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0) as client:
        model = client.models.retrieve("ollama:llama3.2:latest")
        assert (model.id, model.owned_by) == ("ollama:llama3.2:latest", "ollama")
        with pytest.raises(openai.NotFoundError) as raised:
            client.models.retrieve("ollama:nope")
    assert raised.value.code == "model_not_found"


@pytest.mark.parametrize("name", ["ollama:llama3.2", "llama3.2"])
def test_a_model_is_found_by_the_name_a_chat_takes(gateway: Running, name: str) -> None:
    # Before: 404 model_not_found for the docs' own `ollama:llama3.2`, which a chat
    # answers: a client that checks its model before use refused to use it.
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0) as client:
        model = client.models.retrieve(name)
    assert (model.id, model.owned_by) == (name, "ollama")


CUT = "ollama: the server lists 1000 models or more; cortan reads the first 1000"


def test_a_listing_cut_short_is_said_in_a_header_and_once_in_the_log(
    gateway: Running, ollama_env: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    """/v1/models and /api/tags listed the first 1,000 as if they were all."""
    ollama_env.models = [f"m{i}:latest" for i in range(1200)]
    with caplog.at_level(logging.INFO, logger="cortan.serve"):
        for _ in range(2):
            listed = httpx.get(gateway.url + "/v1/models", headers=gateway.headers, timeout=20)
            assert listed.headers.get_list("x-cortan-notice") == [CUT]
            assert len(listed.json()["data"]) == 1000
            tags = httpx.get(gateway.url + "/api/tags", headers=gateway.headers, timeout=20)
            assert tags.headers.get_list("x-cortan-notice") == [CUT]
    assert [r.getMessage() for r in caplog.records].count(CUT) == 1


def test_a_whole_listing_carries_no_notice(gateway: Running) -> None:
    listed = httpx.get(gateway.url + "/v1/models", headers=gateway.headers, timeout=20)
    assert listed.status_code == 200
    assert "x-cortan-notice" not in listed.headers
