"""Redirects: a prompt (or a key) never follows a redirect to another origin.

The SDKs follow redirects, and a 307 or 308 sends the request body again: a base URL
that answers ``307 Location: http://elsewhere/`` would have the prompt posted there.
cortan follows a redirect only to the same origin (or from http to https on the same
host) and refuses any other with one sentence naming the target's origin, on both
providers, for chats and listings alike (cortan/providers/responses.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortan.providers.responses import may_follow, shown_origin
from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI
from tests.servers.http import Exchange, FakeServer

ONE_TRY = {"CORTAN_RETRY__ATTEMPTS": "1"}


class Redirecting:
    """A mixin for a fake: requests without a query string are sent on to ``target``."""

    target = ""  # a full URL; "{path}" is replaced by the request's path
    status = 307

    async def handle(self, ex: Exchange) -> None:
        if not ex.request.query and ex.request.path not in ("/", "/api/version"):
            location = self.target.replace("{path}", ex.request.path)
            await ex.send(self.status, b"moved", "text/plain", {"location": location})
            return
        await super().handle(ex)  # type: ignore[misc]


class RedirectingOllama(Redirecting, FakeOllama):
    pass


class RedirectingOpenAI(Redirecting, FakeOpenAI):
    pass


@pytest.fixture
def elsewhere() -> Iterator[FakeOpenAI]:
    """Another origin, which must never receive anything."""
    with FakeOpenAI() as server:
        yield server


def start(kind: str) -> FakeServer:
    server = RedirectingOpenAI() if kind == "openai" else RedirectingOllama()
    return server.start()


def env_for(kind: str, server: FakeServer) -> dict[str, str]:
    if kind == "openai":
        return {
            "OPENAI_BASE_URL": server.url + "/v1",
            "OPENAI_API_KEY": "sk-test-secret-key-0123456789",
            "CORTAN_DEFAULT_MODEL": "openai:gpt-4o-mini",
            **ONE_TRY,
        }
    return {"OLLAMA_HOST": server.url, "CORTAN_DEFAULT_MODEL": "ollama:llama3.2:latest", **ONE_TRY}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_chat_redirect_to_another_origin_is_refused(
    cortan: type[CortanRunner], elsewhere: FakeOpenAI, kind: str, status: int
) -> None:
    server = start(kind)
    try:
        server.status = status  # type: ignore[attr-defined]
        server.target = elsewhere.url + "{path}"  # type: ignore[attr-defined]
        result = cortan.run("ask", "--no-stdin", "the secret plan", env=env_for(kind, server))
    finally:
        server.stop()
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert f"redirected the request to another origin, {elsewhere.url};" in result.stderr
    assert "cortan does not follow it there" in result.stderr
    assert elsewhere.requests == []  # neither the prompt nor the key went there
    assert len(server.chat_requests) == 1  # and it was not retried


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_listing_redirect_to_another_origin_is_refused(
    cortan: type[CortanRunner], elsewhere: FakeOpenAI, kind: str
) -> None:
    server = start(kind)
    try:
        server.target = "http://localhost:" + str(elsewhere.port) + "{path}"  # type: ignore[attr-defined]
        result = cortan.run("models", "-p", kind, env=env_for(kind, server))
    finally:
        server.stop()
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert f"another origin, http://localhost:{elsewhere.port};" in result.stderr
    assert elsewhere.requests == []


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_same_origin_redirect_is_followed(cortan: type[CortanRunner], kind: str) -> None:
    server = start(kind)
    try:
        server.target = server.url + "{path}?moved=1"  # type: ignore[attr-defined]
        result = cortan.run("ask", "--no-stdin", "hello", env=env_for(kind, server))
    finally:
        server.stop()
    assert (result.code, result.stdout) == (0, "Hello, world!\n"), result.stderr
    moved = [r for r in server.chat_requests if r.query == "moved=1"]
    assert len(moved) == 1
    assert moved[0].json["messages"][-1]["content"] == "hello"


def test_hostile_location_is_shown_as_its_origin_only(
    cortan: type[CortanRunner], elsewhere: FakeOpenAI
) -> None:
    server = start("ollama")
    try:
        server.target = (  # type: ignore[attr-defined]
            f"http://admin:hunter2pass@127.0.0.1:{elsewhere.port}/%1B[2J%E2%80%AE{{path}}"
        )
        result = cortan.run("ask", "--no-stdin", "x", env=env_for("ollama", server))
    finally:
        server.stop()
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert f"another origin, http://127.0.0.1:{elsewhere.port};" in result.stderr
    assert "hunter2pass" not in result.stderr and "admin" not in result.stderr
    assert "\x1b" not in result.stderr and "%1B" not in result.stderr
    assert elsewhere.requests == []


# -- the rule itself -----------------------------------------------------------------------

HOSTS = st.sampled_from(["127.0.0.1", "localhost", "example.com", "[::1]", "EXAMPLE.com"])
PORTS = st.one_of(st.none(), st.integers(1, 65535))
SCHEMES = st.sampled_from(["http", "https", "HTTP"])


def _url(scheme: str, host: str, port: int | None, path: str = "/x") -> str:
    return f"{scheme}://{host}" + (f":{port}" if port else "") + path


@given(SCHEMES, HOSTS, PORTS, SCHEMES, HOSTS, PORTS, st.text(max_size=20))
def test_may_follow_only_within_one_origin(
    s1: str, h1: str, p1: int | None, s2: str, h2: str, p2: int | None, path: str
) -> None:
    base, target = _url(s1, h1, p1), _url(s2, h2, p2, "/" + path.replace("#", ""))
    default = {"http": 80, "https": 443}
    same_host = h1.lower() == h2.lower()
    port1, port2 = p1 or default[s1.lower()], p2 or default[s2.lower()]
    same = s1.lower() == s2.lower() and same_host and port1 == port2
    upgrade = s1.lower() == "http" and s2.lower() == "https" and same_host
    assert may_follow(base, target) == (same or upgrade)


@given(st.text(max_size=60))
def test_shown_origin_never_shows_userinfo_or_controls(text: str) -> None:
    shown = shown_origin(f"http://user:pw-{text}@host{text}:8080/{text}")
    assert "pw-" not in shown
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in shown)
