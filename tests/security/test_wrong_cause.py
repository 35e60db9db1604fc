"""Sentences that name the right cause (issue 15, "Sentences that name the wrong cause").

A malformed key was reported as an unparseable reply or an unreachable host, https to a
plain-HTTP server or a self-signed certificate as "is `ollama serve` running?", a full
disk as "disk I/O error", and non-UTF-8 bytes in a session name or a query as an
"internal error". Each now says what is wrong and where.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, Result, assert_one_sentence
from tests.security.test_readonly_store import fill, tiny_disk
from tests.servers import FakeOllama, FakeOpenAI

ONE_TRY = {"CORTAN_RETRY__ATTEMPTS": "1"}


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("sk-abc\ndef", "a line break"),
        ("sk-abcdé", "a non-ASCII character"),
        ("sk-abc def", "a space"),
        ("sk-\x1b[2Jabc", "a control character"),
    ],
    ids=["newline", "non-ascii", "space", "control"],
)
def test_malformed_key_is_named_with_its_source(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, key: str, what: str
) -> None:
    result = cortan.run("ask", "--no-stdin", "x", env={"OPENAI_API_KEY": key, **ONE_TRY})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "the API key for provider 'openai' from the environment variable OPENAI_API_KEY" in (
        result.stderr
    )
    assert f"is malformed (it holds {what};" in result.stderr
    assert "cortan keys set openai" in result.stderr
    assert openai_env.chat_requests == []


def test_malformed_key_from_a_command(
    cortan: type[CortanRunner], openai_server: FakeOpenAI, config_file: Path
) -> None:
    config_file.write_text(
        f'[providers.work]\nkind = "openai"\nbase_url = "{openai_server.url}/v1"\n'
        "api_key_cmd = \"printf 'sk-\\\\303\\\\251t\\\\n'\"\n"
    )
    result = cortan.run("ask", "--no-stdin", "-m", "work:gpt-4o-mini", "x", env=ONE_TRY)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "provider 'work' from api_key_cmd is malformed" in result.stderr


def ask_at(cortan: type[CortanRunner], kind: str, url: str) -> Result:
    """``ask`` with the default host of provider ``kind`` at ``url``, tried once."""
    env = {"OLLAMA_HOST": url, **ONE_TRY}
    if kind == "openai":
        env = {"OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": "sk-x", **ONE_TRY}
    model = "openai:gpt-4o-mini" if kind == "openai" else "ollama:llama3.2:latest"
    return cortan.run("ask", "--no-stdin", "-m", model, "x", env=env)


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_https_to_a_plain_http_server_says_tls(
    cortan: type[CortanRunner], ollama: FakeOllama, kind: str
) -> None:
    url = ollama.url.replace("http://", "https://")
    result = ask_at(cortan, kind, url)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "failed: it does not speak TLS there: is the URL http://, not https://?" in (
        result.stderr
    )
    assert "ollama serve" not in result.stderr


OPENSSL_REQ = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[str]:
    """A TLS server on loopback with a self-signed certificate (handshakes only)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(
        [*OPENSSL_REQ, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if made.returncode != 0:
        pytest.skip("openssl cannot make a certificate here")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    thread.join(5)


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_self_signed_certificate_says_tls(
    cortan: type[CortanRunner], self_signed: str, kind: str
) -> None:
    env = {"OLLAMA_HOST": self_signed, **ONE_TRY}
    if kind == "openai":
        env = {"OPENAI_BASE_URL": self_signed + "/v1", "OPENAI_API_KEY": "sk-x", **ONE_TRY}
    model = "openai:gpt-4o-mini" if kind == "openai" else "ollama:llama3.2:latest"
    result = cortan.run("ask", "--no-stdin", "-m", model, "x", env=env)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "failed: its certificate was refused (self" in result.stderr  # self-signed …
    assert "ollama serve" not in result.stderr


NOT_UTF8 = os.fsdecode(b"caf\xe9")


@pytest.mark.parametrize(
    "args",
    [
        ["ask", "--no-stdin", "--session", NOT_UTF8, "x"],
        ["logs", "-q", NOT_UTF8],
        ["sessions", "show", NOT_UTF8],
        ["sessions", "export", NOT_UTF8],
        ["sessions", "rename", NOT_UTF8, "b"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_non_utf8_arguments_are_one_sentence_exit_2(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: list[str]
) -> None:
    assert cortan.run("ask", "--no-stdin", "--session", "s", "x").code == 0  # a store exists
    result = cortan.run(*args)
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "is not valid UTF-8 text (byte 0xe9 at character 4)" in result.stderr
    assert "internal error" not in result.stderr


def test_a_full_disk_is_called_full(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    data = isolated_env / "data"
    with tiny_disk(data):
        assert cortan.run("ask", "--no-stdin", "--session", "s", "fits").code == 0
        fill(data)
        result = cortan.run("ask", "--no-stdin", "--session", "s", "a long question " * 2000)
    assert result.code == 1
    assert "disk I/O error" not in result.stderr
    assert "is full: free some space there" in result.stderr


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_http_to_a_tls_server_says_https(
    cortan: type[CortanRunner], self_signed: str, kind: str
) -> None:
    url = self_signed.replace("https://", "http://")
    result = ask_at(cortan, kind, url)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "speaks TLS, not plain HTTP: is the URL https://, not http://?" in result.stderr
    assert "ollama serve" not in result.stderr


@pytest.mark.parametrize("command", [("models",), ("doctor",)], ids=["models", "doctor"])
@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_http_to_a_tls_server_says_https_in_models_and_doctor(
    cortan: type[CortanRunner], self_signed: str, kind: str, command: tuple[str, ...]
) -> None:
    """The hint was for chats only: a listing said the server closed the connection."""
    url = self_signed.replace("https://", "http://")
    env = {"OLLAMA_HOST": url, **ONE_TRY}
    if kind == "openai":
        env = {"OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": "sk-x", **ONE_TRY}
    result = (
        cortan.run(*command, "--provider", kind, env=env)
        if command == ("models",)
        else (cortan.run(*command, env=env))
    )
    assert result.code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    said = " ".join((result.stdout + result.stderr).split())  # a table may wrap it
    assert "speaks TLS, not plain HTTP: is the URL https://, not http://?" in said
