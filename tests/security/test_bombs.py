"""Decompression bombs: no response a server sends may take cortan's memory past 100 MiB.

A 1 MiB gzip body inflates to 1 GiB. Every body is inflated by cortan itself, 64 KiB at
a time, and counted (cortan/providers/responses.py): a model list or a model's details
stop at ``max_listing_bytes``, one line of a streamed answer at ``max_output_bytes``, a
whole streamed answer at ``max_response_bytes``. The end-to-end cases run the installed
``cortan`` against loopback servers that send such a bomb, and measure its peak memory.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import struct
import subprocess
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortan.core.errors import BadResponseError
from cortan.providers.responses import CHUNK, BoundedBody
from tests.conftest import assert_one_sentence, measured_command
from tests.servers import FakeOllama, FakeOpenAI, Reply
from tests.servers.http import Exchange

MIB = 1 << 20
PEAK_LIMIT_KIB = 100 * 1024
ONE_TRY = {"CORTAN_RETRY__ATTEMPTS": "1"}


def bomb(prefix: bytes, mib: int = 1024, fill: bytes = b"a") -> bytes:
    """A valid gzip body: ``prefix`` then ``mib`` MiB of ``fill``, about ``mib`` KiB on the wire.

    Built from one compressed MiB repeated (each block ends in a full flush, so the
    blocks are alike), in a second instead of the minute compressing a GiB would take.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = fill * MIB
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    one = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    size = len(prefix) + mib * len(block)
    end = b"\x03\x00"  # a final, empty block
    return head + one * mib + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


@cache
def tags_bomb() -> bytes:
    return bomb(b'{"models":[{"name":"')


GZIP = {"content-encoding": "gzip"}


class BombingOllama(FakeOllama):
    """A fake Ollama whose listing and model details are gzip bombs."""

    async def handle(self, ex: Exchange) -> None:
        if ex.request.path in ("/api/tags", "/api/show"):
            await ex.send(200, tags_bomb(), "application/json", GZIP)
        else:
            await super().handle(ex)


class BombingOpenAI(FakeOpenAI):
    """A fake OpenAI-compatible server whose model list is a gzip bomb."""

    async def handle(self, ex: Exchange) -> None:
        if ex.request.path == "/v1/models":
            await ex.send(200, bomb(b'{"object":"list","data":[{"id":"'), "application/json", GZIP)
        else:
            await super().handle(ex)


def run_measured(args: list[str], env: dict[str, str]) -> tuple[int, str, str, int]:
    """Exit code, stdout, stderr and peak memory (KiB) of one cortan run."""
    peak = Path(tempfile.mkdtemp()) / "peak"
    done = subprocess.run(
        [*measured_command(peak), *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **ONE_TRY, **env},
        timeout=120,
        check=False,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    return done.returncode, done.stdout.decode("utf-8", "replace"), stderr, int(peak.read_text())


@pytest.fixture
def bombing_ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[BombingOllama]:
    with BombingOllama() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        monkeypatch.setenv("CORTAN_DEFAULT_MODEL", "ollama:llama3.2:latest")
        yield server


@pytest.fixture
def bombing_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[BombingOpenAI]:
    with BombingOpenAI() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
        monkeypatch.setenv("CORTAN_DEFAULT_MODEL", "openai:gpt-4o-mini")
        yield server


# -- end to end: the installed cortan against a 1 MiB gzip bomb ------------------------------


#: A model list is read to its first MiB only (cortan.providers.base.read_listing).
LISTING_CUT = "sent a model list whose first 1 MiB hold no whole entry; stopped there"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        pytest.param(["models", "-p", "ollama"], LISTING_CUT, id="api-tags"),
        pytest.param(
            ["models", "show", "llama3.2:latest"],
            "larger than 8 MiB once decompressed; stopped there (setting max_listing_bytes)",
            id="api-show",
        ),
    ],
)
def test_ollama_listing_bomb_is_cut(
    bombing_ollama: BombingOllama, args: list[str], said: str
) -> None:
    code, _, stderr, peak_kib = run_measured(args, {})
    assert code == 1, stderr
    assert_one_sentence(stderr)
    assert said in stderr
    assert peak_kib < PEAK_LIMIT_KIB, f"{peak_kib // 1024} MiB"


def test_openai_model_list_bomb_is_cut(bombing_openai: BombingOpenAI) -> None:
    code, _, stderr, peak_kib = run_measured(["models", "-p", "openai"], {})
    assert code == 1, stderr
    assert_one_sentence(stderr)
    assert LISTING_CUT in stderr
    assert peak_kib < PEAK_LIMIT_KIB, f"{peak_kib // 1024} MiB"


OLLAMA_PIECE = (
    b'{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"'
)
OPENAI_PIECE = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"'
)


@pytest.mark.parametrize("server", ["ollama", "openai"])
def test_chat_stream_bomb_is_cut_at_one_piece(
    ollama_env: FakeOllama, openai_server: FakeOpenAI, server: str
) -> None:
    """One line of 1 GiB: cut past max_output_bytes, however it was compressed."""
    env: dict[str, str] = {}
    if server == "openai":
        env |= {"OPENAI_BASE_URL": f"{openai_server.url}/v1", "OPENAI_API_KEY": "sk-test-key"}
        env |= {"CORTAN_DEFAULT_MODEL": "openai:gpt-4o-mini"}
    fake, prefix = (openai_server, OPENAI_PIECE) if server == "openai" else (ollama_env, None)
    fake.queue(Reply(body=bomb(prefix or OLLAMA_PIECE), headers=GZIP))
    code, stdout, stderr, peak_kib = run_measured(["ask", "--no-stdin", "x"], env)
    assert code == 1, stderr
    assert_one_sentence(stderr)
    assert "sent one piece of answer larger than 4.06 MiB; stopped there" in stderr
    assert "(setting max_output_bytes)" in stderr
    assert len(stdout) < 2
    assert peak_kib < PEAK_LIMIT_KIB, f"{peak_kib // 1024} MiB"


@pytest.mark.parametrize("server", ["ollama", "openai"])
def test_chat_stream_of_empty_pieces_is_cut_at_max_response_bytes(
    ollama_env: FakeOllama, openai_server: FakeOpenAI, server: str
) -> None:
    """Endless lines that each say nothing: the whole body is bounded too."""
    env = {"CORTAN_MAX_RESPONSE_BYTES": str(2 * MIB)}
    if server == "openai":
        env |= {"OPENAI_BASE_URL": f"{openai_server.url}/v1", "OPENAI_API_KEY": "sk-test-key"}
        env |= {"CORTAN_DEFAULT_MODEL": "openai:gpt-4o-mini"}
    fake = openai_server if server == "openai" else ollama_env
    line = (OPENAI_PIECE + b'"},"finish_reason":null}]}\n\n') if server == "openai" else None
    line = line or (OLLAMA_PIECE + b'"},"done":false}\n')
    fake.queue(Reply(body=gzip.compress(line * (8 * MIB // len(line))), headers=GZIP))
    code, _, stderr, peak_kib = run_measured(["ask", "--no-stdin", "x"], env)
    assert code == 1, stderr
    assert_one_sentence(stderr)
    assert "sent an answer larger than 2 MiB once decompressed; stopped there" in stderr
    assert "(setting max_response_bytes)" in stderr
    assert peak_kib < PEAK_LIMIT_KIB, f"{peak_kib // 1024} MiB"


def test_an_encoding_cortan_did_not_ask_for_is_refused(ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(body=b"\x8b\x00\x80garbage", headers={"content-encoding": "br"}))
    code, _, stderr, _ = run_measured(["ask", "--no-stdin", "x"], {})
    assert code == 1
    assert_one_sentence(stderr)
    assert "in an encoding cortan does not read ('br')" in stderr


def test_a_bounded_reply_still_arrives_whole(ollama_env: FakeOllama) -> None:
    """Compression itself is fine: a gzip answer under every bound is read as sent."""
    body = b"".join(
        OLLAMA_PIECE + word.encode() + b' "},"done":false}\n' for word in ("one", "two")
    )
    done = OLLAMA_PIECE + b'"},"done":true,"done_reason":"stop"}\n'
    ollama_env.queue(Reply(body=gzip.compress(body + done), headers=GZIP))
    code, stdout, stderr, _ = run_measured(["ask", "--no-stdin", "x"], {})
    assert (code, stdout) == (0, "one two \n"), stderr


# -- the bounded body itself: any data, any compression, any cut on the wire -----------------


async def _wire(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in sorted({c for c in cuts if 0 < c < len(data)}):
        yield data[start:cut]
        start = cut
    yield data[start:]


def _too_large(what: str) -> BadResponseError:
    return BadResponseError(f"too large: {what}")


async def _read(body: BoundedBody) -> list[bytes]:
    return [piece async for piece in body]


def _compress(data: bytes, encoding: str, level: int) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=level)
    if encoding == "deflate":
        return zlib.compress(data, level)
    raw = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)  # "deflate" without header
    return raw.compress(data) + raw.flush()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=4096)
    | st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 40_000)),
    encoding=st.sampled_from(["gzip", "deflate", "raw-deflate", "identity"]),
    level=st.integers(0, 9),
    cuts=st.lists(st.integers(0, 1 << 16), max_size=8),
)
def test_bounded_body_reads_what_was_sent_in_bounded_pieces(
    data: bytes, encoding: str, level: int, cuts: list[int]
) -> None:
    wire = data if encoding == "identity" else _compress(data, encoding, level)
    name = "deflate" if encoding == "raw-deflate" else encoding
    body = BoundedBody(
        _wire(wire, cuts), [name], limit=1 << 30, line_limit=1 << 30, too_large=_too_large
    )
    pieces = asyncio.run(_read(body))
    assert b"".join(pieces) == data
    assert all(0 < len(p) <= max(CHUNK, len(wire)) for p in pieces)
    if encoding != "identity":
        assert all(len(p) <= CHUNK for p in pieces)


@pytest.mark.parametrize("cut", [0, 1, 2])
def test_raw_deflate_cut_inside_the_header_is_read(cut: int) -> None:
    """A raw "deflate" body whose first read is one byte: zlib's header check needs two
    before raw deflate can be told from it (found by the property test above)."""
    data = b"hello " * 50
    wire = _compress(data, "raw-deflate", 6)
    body = BoundedBody(
        _wire(wire, [cut]), ["deflate"], limit=1 << 30, line_limit=1 << 30, too_large=_too_large
    )
    assert b"".join(asyncio.run(_read(body))) == data
    empty = BoundedBody(
        _wire(_compress(b"", "raw-deflate", 0), [cut]), ["deflate"], limit=1 << 30,
        line_limit=1 << 30, too_large=_too_large,
    )  # fmt: skip
    assert asyncio.run(_read(empty)) == []


@settings(max_examples=30, deadline=None)
@given(
    ratio_mib=st.integers(1, 64),
    limit=st.integers(1, 4 * MIB),
    layers=st.integers(1, 2),
    cuts=st.lists(st.integers(0, 1 << 14), max_size=4),
)
def test_bounded_body_stops_any_ratio_at_its_limit(
    ratio_mib: int, limit: int, layers: int, cuts: list[int]
) -> None:
    """However much a body would inflate to, no more than the limit (and one piece) is read."""
    wire = bomb(b"", mib=ratio_mib, fill=b"\n")  # lines, so only the total is at stake
    for _ in range(layers - 1):
        wire = gzip.compress(wire)
    body = BoundedBody(
        _wire(wire, cuts), ["gzip"] * layers, limit=limit, line_limit=1 << 30, too_large=_too_large
    )
    read = 0

    async def run() -> None:
        nonlocal read
        async for piece in body:
            read += len(piece)

    if ratio_mib * MIB <= limit:
        asyncio.run(run())
        assert read == ratio_mib * MIB
        return
    with pytest.raises(BadResponseError, match="total"):
        asyncio.run(run())
    assert read <= limit


@given(length=st.integers(1, 3 * CHUNK), limit=st.integers(1, 2 * CHUNK))
@settings(max_examples=40, deadline=None)
def test_bounded_body_stops_a_line_at_its_limit(length: int, limit: int) -> None:
    wire = gzip.compress(b"x" * length)
    body = BoundedBody(
        _wire(wire, []), ["gzip"], limit=1 << 30, line_limit=limit, too_large=_too_large
    )
    if length <= limit:
        assert b"".join(asyncio.run(_read(body))) == b"x" * length
    else:
        with pytest.raises(BadResponseError, match="line"):
            asyncio.run(_read(body))
