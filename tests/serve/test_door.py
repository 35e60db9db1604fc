"""The door of every request: token, Host header, origins, request ids, metrics."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import httpx
import ollama
import openai
import pytest

from cortan.serve.security import HostCheck, make_trace
from tests.serve.conftest import TOKEN, Running
from tests.servers import FakeOllama, Reply

MODEL = "ollama:llama3.2:latest"
HI: Any = [{"role": "user", "content": "hi"}]
BODY = {"model": MODEL, "messages": HI}


@pytest.mark.parametrize("key", ["", "wrong-token-0123456789", TOKEN + "x", TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_401(gateway: Running, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json=BODY, headers=headers)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert "--print-token" in reply.json()["error"]["message"]


def test_the_sdks_report_a_wrong_token(gateway: Running) -> None:
    """A wrong key was told a token is required, as if it had sent none."""
    with pytest.raises(openai.AuthenticationError) as wrong:
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="nope", max_retries=0).models.list()
    assert "the bearer token sent is not this gateway's" in wrong.value.message
    with (
        closing(ollama.Client(host=gateway.url)) as bare,
        pytest.raises(ollama.ResponseError, match="bearer token is required") as caught,
    ):
        bare.chat(model=MODEL, messages=HI)
    assert caught.value.status_code == 401


def test_the_ollama_library_sends_OLLAMA_API_KEY_as_the_token(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", TOKEN)
    with closing(ollama.Client(host=gateway.url)) as keyed:
        assert keyed.chat(model=MODEL, messages=HI).message.content


def test_health_is_open_and_metrics_are_not(gateway: Running) -> None:
    assert httpx.get(gateway.url + "/health").json()["status"] == "ok"
    assert httpx.get(gateway.url + "/metrics").status_code == 401


@pytest.mark.parametrize("host", ["evil.example", "evil.example:11435", "127.0.0.1.nip.io"])
def test_a_foreign_host_header_is_421_even_with_the_token(gateway: Running, host: str) -> None:
    headers = {**gateway.headers, "Host": host}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json=BODY, headers=headers)
    assert reply.status_code == 421
    assert "serve.allowed_hosts" in reply.json()["error"]["message"]


def test_host_names_that_pass() -> None:
    check = HostCheck(["box.lan"], beyond_loopback=False)
    for host in ("localhost:1", "127.0.0.1:2", "[::1]:3", "box.lan", "a.localhost", "127.9.9.9"):
        assert check.allows(host), host
    assert not check.allows("10.0.0.5:1")
    assert HostCheck([], beyond_loopback=True).allows("10.0.0.5:1")
    assert not HostCheck([], beyond_loopback=True).allows("attacker.example")


def test_a_web_page_of_another_origin_is_refused(gateway: Running) -> None:
    headers = {**gateway.headers, "Origin": "https://evil.example"}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json=BODY, headers=headers)
    assert reply.status_code == 403
    assert "access-control-allow-origin" not in reply.headers


def test_an_allowed_origin_gets_cors_headers_naming_it(
    gateway_factory: object, ollama_env: FakeOllama
) -> None:
    running: Running = gateway_factory(cors_origins=["http://localhost:3000"])  # type: ignore[operator]
    origin = {"Origin": "http://localhost:3000"}
    preflight = httpx.options(
        running.url + "/v1/chat/completions",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    reply = httpx.post(
        running.url + "/v1/chat/completions", json=BODY, headers={**running.headers, **origin}
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_a_wildcard_origin_is_a_config_error(tmp_path: object) -> None:
    from cortan.config.settings import ServeSettings

    with pytest.raises(ValueError, match="wildcard"):
        ServeSettings(cors_origins=["*"])


def test_the_request_id_is_echoed_stored_and_followed_upstream(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {**gateway.headers, "X-Request-ID": "job-42.7", "traceparent": parent}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json=BODY, headers=headers)
    assert reply.headers["x-request-id"] == "job-42.7"
    upstream = ollama_env.chat_requests[-1].headers["traceparent"]
    assert upstream.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert upstream.split("-")[2] != "b7ad6b7169203331"  # a span of cortan's own
    (conversation,) = gateway.conversations()
    assert conversation.request_id == "job-42.7"
    assert conversation.title == "hi"  # given as it is created (cortan.store.recorder)
    assert conversation.client == f"openai python-httpx/{httpx.__version__}"


def test_a_request_id_is_made_when_none_or_a_hostile_one_is_sent(gateway: Running) -> None:
    url = gateway.url + "/v1/chat/completions"
    made = httpx.post(url, json=BODY, headers=gateway.headers).headers["x-request-id"]
    hostile = {**gateway.headers, "X-Request-ID": "a b;<i>\t" + "x" * 300}
    replaced = httpx.post(url, json=BODY, headers=hostile).headers["x-request-id"]
    assert len(made) == 32 and len(replaced) == 32 and made != replaced
    # A control character is not HTTP at all: the server's parser refuses the request.
    before = len(gateway.conversations())
    escape = {**gateway.headers, "X-Request-ID": "a\x1b[2J"}
    refused = httpx.post(url, json=BODY, headers=escape)
    assert refused.status_code == 400 and len(gateway.conversations()) == before


def test_traces() -> None:
    trace = make_trace("0af7651916cd43dd8448eb211c80319c", None)
    assert trace.traceparent.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert make_trace("x", "00-" + "0" * 32 + "-" + "1" * 16 + "-01").traceparent[3:35] != "0" * 32
    assert make_trace("x", "garbage").traceparent.endswith("-01")


def test_the_client_can_name_itself(gateway: Running) -> None:
    headers = {**gateway.headers, "X-Cortan-Client": "my-editor 1.0"}
    httpx.post(gateway.url + "/v1/chat/completions", json=BODY, headers=headers)
    assert gateway.conversations()[0].client == "openai my-editor 1.0"


def test_metrics_count_requests_errors_tokens_and_breakers(gateway: Running) -> None:
    url = gateway.url + "/v1/chat/completions"
    httpx.post(url, json=BODY, headers=gateway.headers)
    httpx.post(url, json={**BODY, "model": "ollama:nope"}, headers=gateway.headers)
    httpx.post(url, json=BODY)  # no token
    text = httpx.get(gateway.url + "/metrics", headers=gateway.headers).text
    for line in (
        'cortan_serve_requests_total{api="openai",outcome="finished"} 1.0',
        'cortan_serve_requests_total{api="openai",outcome="failed"} 1.0',
        'cortan_serve_errors_total{kind="model_not_found"} 1.0',
        'cortan_serve_errors_total{kind="auth"} 1.0',
        'cortan_serve_tokens_total{kind="completion",provider="ollama"} 4.0',
        'cortan_serve_time_to_first_token_seconds_count{provider="ollama"} 1.0',
        'cortan_serve_queue_depth{provider="ollama"} 0.0',
        "cortan_serve_breaker_state{host=",
        "cortan_serve_connections 1.0",
    ):
        assert line in text, line


@pytest.mark.parametrize("wire", ["ollama", "openai"])
def test_a_cookie_an_upstream_sets_rides_on_no_later_request(
    wire: str, gateway_factory: Any, request: pytest.FixtureRequest
) -> None:
    """One upstream client sends for every gateway client: a cookie one answer set
    would otherwise go out with everyone's next requests."""
    upstream = request.getfixturevalue(f"{wire}_env")
    upstream.default = Reply(headers={"set-cookie": "session=client-a; Path=/"})
    gateway = gateway_factory()
    body = {**BODY, "model": "ollama:llama3.2:latest" if wire == "ollama" else "openai:gpt-4o-mini"}
    for _ in range(3):
        reply = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=gateway.headers)
        assert reply.status_code == 200, reply.text
    sent = [r.headers.get("cookie") for r in upstream.chat_requests]
    assert sent == [None, None, None]


@pytest.mark.parametrize("path", ["/api/chat/", "/v1/chat/completions/", "/api/tags/"])
def test_a_path_with_a_slash_added_is_not_served_not_redirected(
    gateway: Running, path: str
) -> None:
    # Before: Starlette's 307 with an empty body and a Location built from the Host
    # header the client sent (http://evil.localhost:…/api/tags).
    headers = {**gateway.headers, "Host": "evil.localhost"}
    reply = httpx.post(gateway.url + path, json=BODY, headers=headers)
    assert reply.status_code == 404
    assert "location" not in reply.headers
    assert "does not serve" in reply.text


def test_a_request_without_a_host_header_is_400(gateway: Running) -> None:
    import socket

    port = int(gateway.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET /v1/models HTTP/1.0\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head  # was 421 "host ''"
    assert b"the request has no Host header" in body


@pytest.mark.parametrize(
    ("message", "sentence"),
    [
        ({"content": "hi"}, "message 1 has no `role`"),
        ({"role": "user", "content": ["hi"]}, "content part 1 is not a {type, text} object"),
        ({"role": "user", "content": [{"text": "hi"}]}, "content part 1 is not a {type, text}"),
    ],
)
def test_a_malformed_message_is_named_for_what_it_lacks(
    gateway: Running, message: dict[str, Any], sentence: str
) -> None:
    # Before: "has role 'None'", "is of type 'None'".
    body = {"model": MODEL, "messages": [message]}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=gateway.headers)
    assert reply.status_code == 400
    assert sentence in reply.json()["error"]["message"]
    assert "None" not in reply.json()["error"]["message"]


def test_an_allow_secrets_header_that_says_neither_is_400(gateway: Running) -> None:
    # Before: "maybe" (or a typo of "true") kept the guard on and said nothing.
    headers = {**gateway.headers, "X-Cortan-Allow-Secrets": "maybe"}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json=BODY, headers=headers)
    assert reply.status_code == 400
    assert "`X-Cortan-Allow-Secrets` must be true or false, not 'maybe'" in reply.text
    headers["X-Cortan-Allow-Secrets"] = "false"
    assert httpx.post(gateway.url + "/v1/chat/completions", json=BODY, headers=headers).is_success
