"""The OpenAI provider on its own httpx2 client: what a server receives from it.

The SDK's behaviour that cortan kept (the key as a bearer token, the organization and
project from the environment, the trace headers, ``extra_body`` at the top of the body)
and what changed on purpose (cortan's own ``User-Agent``, no ``X-Stainless-*``
headers), against the loopback fake over a real socket.
"""

from __future__ import annotations

from contextlib import aclosing

import pytest

from cortan.config.settings import ProviderConfig, Timeouts
from cortan.core.errors import CortanError
from cortan.core.messages import Message
from cortan.providers import get_factory
from cortan.providers.base import Finish, ModelRequest, Provider
from tests.servers import FakeOpenAI

MODEL = "gpt-4o-mini"


@pytest.fixture(autouse=True)
def keyed(openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", str(openai_server.api_key))


def make(server: FakeOpenAI) -> Provider:
    url = server.url + "/v1"
    config = ProviderConfig(kind="openai", base_url=url, api_key_env="OPENAI_API_KEY")
    return get_factory("openai")("openai", url, config, Timeouts(connect=5, total=10))


async def answer(server: FakeOpenAI, request: ModelRequest) -> str:
    provider = make(server)
    try:
        async with aclosing(provider.stream_chat(request)) as stream:  # type: ignore[type-var]
            pieces = [piece async for piece in stream]
    finally:
        await provider.aclose()
    assert isinstance(pieces[-1], Finish)
    return "".join(p for p in pieces if isinstance(p, str))


async def test_the_request_carries_cortans_headers_only(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-1")
    request = ModelRequest(MODEL, (Message("user", "hi"),), headers={"traceparent": "00-a-b-01"})
    assert await answer(openai_server, request) == "Hello, world!"
    headers = openai_server.chat_requests[-1].headers
    assert headers["authorization"] == f"Bearer {openai_server.api_key}"
    assert headers["openai-organization"] == "org-1"
    assert headers["openai-project"] == "proj-1"
    assert headers["traceparent"] == "00-a-b-01"
    assert headers["user-agent"].startswith("cortan/")
    assert [name for name in headers if name.startswith("x-stainless")] == []


async def test_the_models_are_listed_with_the_key(openai_server: FakeOpenAI) -> None:
    provider = make(openai_server)
    try:
        names = [info.name for info in await provider.list_models()]
    finally:
        await provider.aclose()
    assert names == list(openai_server.models)
    listing = [r for r in openai_server.requests if r.path == "/v1/models"][-1]
    assert listing.headers["authorization"] == f"Bearer {openai_server.api_key}"


def test_an_organization_that_is_not_ascii_is_one_sentence(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK failed it at the request, as a reply cortan "cannot parse".
    monkeypatch.setenv("OPENAI_ORG_ID", "org-\u00e9")
    with pytest.raises(CortanError, match=r"^OPENAI_ORG_ID is malformed: an id is one line"):
        make(openai_server)
