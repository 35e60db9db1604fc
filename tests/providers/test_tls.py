"""The deferred-CA TLS context: verifies like the default, reads its authorities only if used."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import certifi
import pytest

from cortan.providers.tls import DeferredCAContext, get_verify, load_like_httpx, load_system


def test_https_keeps_the_library_default_and_http_defers() -> None:
    assert get_verify("https://api.openai.com/v1") is True
    context = get_verify("http://127.0.0.1:11434")
    assert isinstance(context, DeferredCAContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert not context.loaded
    assert context.cert_store_stats()["x509_ca"] == 0


@pytest.mark.parametrize("wrap", ["bio", "socket"])
def test_authorities_load_once_before_the_first_handshake(wrap: str) -> None:
    calls: list[ssl.SSLContext] = []
    context = DeferredCAContext(calls.append)
    for _ in range(2):
        if wrap == "bio":
            context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
        else:
            import socket

            with socket.socket() as sock, context.wrap_socket(sock, server_hostname="x.test"):
                pass
    assert calls == [context]
    assert context.loaded


def test_load_like_httpx_reads_certifi_or_ssl_cert_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    load_like_httpx(default)
    assert default.cert_store_stats()["x509_ca"] > 0
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    with pytest.raises(FileNotFoundError):
        load_like_httpx(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


def test_load_system_runs() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    load_system(context)  # the platform's store; may be empty in a container, must not fail


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key, made by the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


async def handshake(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost"),
            10,
        )
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_handshake_verifies_against_the_loaded_authorities(
    self_signed: tuple[Path, Path],
) -> None:
    cert, key = self_signed
    trusted = DeferredCAContext(lambda c: c.load_verify_locations(cafile=cert))
    await handshake(trusted, cert, key)
    assert trusted.loaded


async def test_an_unknown_certificate_is_refused(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    context = DeferredCAContext(lambda c: c.load_verify_locations(cafile=certifi.where()))
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(context, cert, key)
