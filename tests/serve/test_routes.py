"""Paths and methods the gateway does not serve, as the client libraries read them."""

from __future__ import annotations

from contextlib import closing

import httpx
import ollama
import openai
import pytest

from tests.serve.conftest import TOKEN, Running
from tests.servers import FakeOllama


def test_an_openai_endpoint_not_served_is_one_sentence_the_sdk_reads(gateway: Running) -> None:
    """Starlette's plain ``Not Found`` reached the SDK as a message of two words."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)
    with pytest.raises(openai.NotFoundError) as raised:
        client.embeddings.create(model="ollama:llama3.2", input="hi")
    assert raised.value.code == "not_served"
    assert "does not serve /v1/embeddings: it serves /v1/chat/completions" in raised.value.message


def test_an_ollama_endpoint_not_served_names_itself(gateway: Running) -> None:
    with (
        closing(ollama.Client(host=gateway.url, headers=gateway.headers)) as client,
        pytest.raises(ollama.ResponseError) as raised,
    ):
        client.embed(model="ollama:llama3.2", input="hi")
    assert raised.value.status_code == 404
    assert raised.value.error.startswith("cortan serve does not serve /api/embed: it serves")


def test_a_wrong_method_is_405_in_the_apis_shape(gateway: Running) -> None:
    reply = httpx.get(gateway.url + "/v1/chat/completions", headers=gateway.headers)
    assert (reply.status_code, reply.headers["allow"]) == (405, "POST")
    assert reply.json()["error"]["message"] == "/v1/chat/completions takes POST, not GET"
    reply = httpx.delete(gateway.url + "/api/tags", headers=gateway.headers)
    assert reply.status_code == 405
    assert reply.json() == {"error": "/api/tags takes GET, HEAD, not DELETE"}


def test_an_ollama_client_is_shown_a_model_as_the_gateway_serves_it(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    """``/api/show`` was 404: ``ollama run`` then pulls, and Zed and Continue find no window."""
    ollama_env.capabilities["llama3.2:latest"] = ["completion", "tools", "vision", "thinking"]
    with closing(ollama.Client(host=gateway.url, headers=gateway.headers)) as client:
        shown = client.show("ollama:llama3.2:latest")
        assert shown.capabilities == ["completion", "vision", "thinking"]  # no tools: refused
        assert shown.details is not None and shown.details.family == "llama"
        assert shown.modelinfo == {
            "general.architecture": "llama", "llama.context_length": 32768,
        }  # fmt: skip
        with pytest.raises(ollama.ResponseError) as raised:
            client.show("ollama:nope")
    assert raised.value.status_code == 404
    assert "'nope' is not on Ollama" in raised.value.error
