"""The model lists (``/v1/models``, ``/api/tags``) while one provider does not answer."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

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
