"""Hostile server responses: truncated, malformed, oversized, never ending.

Each goes through the real client library and cortan's provider (malformed bodies in
this process, the rest in the installed ``cortan``): the failure is one sentence and
exit 1, what arrived before it is kept on stdout and in the store, and an earlier
conversation in the store is untouched.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import overload

import pytest

from cortan.config.settings import ProviderConfig, Timeouts
from cortan.core.errors import CortanError
from cortan.core.messages import Message
from cortan.providers import get_factory
from cortan.providers.base import ModelRequest
from cortan.store import SessionStore
from tests.conftest import CortanRunner, assert_one_sentence, measured_command
from tests.servers import FakeOllama, FakeOpenAI, Reply

ONE_TRY = {"CORTAN_RETRY__ATTEMPTS": "1"}
CHUNK = '{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant",'


class Endless(Sequence[str]):
    """An answer that never ends: the same piece, for ever."""

    def __init__(self, piece: str) -> None:
        self.piece = piece

    def __len__(self) -> int:
        return 1 << 40

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self.piece if isinstance(index, int) else [self.piece]

    def __iter__(self) -> Iterator[str]:
        while True:
            yield self.piece


@pytest.fixture
def stored(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> Iterator[FakeOllama]:
    """One good exchange already in the store; after the test it must still be there."""
    ollama_env.queue(Reply(pieces=["kept ", "answer"]))
    assert cortan.run("ask", "--no-stdin", "first question").code == 0
    yield ollama_env
    with SessionStore.open(isolated_env / "data") as store:
        contents = [(m.role, m.content, m.status) for m in reversed(store.recent_messages(100))]
    assert contents[:2] == [
        ("user", "first question", "complete"),
        ("assistant", "kept answer", "complete"),
    ]


def ask(
    cortan: type[CortanRunner], *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    result = cortan.run("ask", "--no-stdin", *args, "x", env={**ONE_TRY, **(env or {})})
    assert "Traceback" not in result.stderr
    if result.code:
        assert_one_sentence(result.stderr)
    return result.code, result.stdout, result.stderr


# -- truncated and malformed ----------------------------------------------------------------
# Each body through the real client library and cortan's provider, in this process: the
# provider must raise one of cortan's errors, with one sentence. The `cortan` command turns
# any such error into that sentence and exit 1, as the end-to-end cases further down show.


async def failure_of(kind: str, url: str, model: str) -> str:
    """The sentence the provider fails with (the test fails if it does not fail)."""
    config = ProviderConfig(kind="ollama", hosts=[url])
    if kind == "openai":
        config = ProviderConfig(kind="openai", base_url=url, api_key_env="SECURITY_TEST_KEY")
    provider = get_factory(kind)(kind, url, config, Timeouts(connect=5, first_token=10, total=10))
    try:
        async with aclosing(
            provider.stream_chat(ModelRequest(model, (Message("user", "x"),)))
        ) as stream:  # type: ignore[type-var]
            async for _ in stream:
                pass
    except CortanError as exc:
        message = str(exc)
    else:
        raise AssertionError("the stream was accepted")
    finally:
        await provider.aclose()
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(CHUNK.encode() + b'"content":"par', "cannot parse", id="truncated-line"),
        pytest.param(bytes(range(256)) * 4, "cannot parse", id="binary-garbage"),
        pytest.param(b'{"foo": 1}\n', "cannot parse", id="wrong-shape"),
        pytest.param(b"null\n", "cannot parse", id="null"),
        pytest.param(b"\n", "cannot parse", id="blank-line"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000 + b"\n", "cannot parse", id="deep-nesting"),
        pytest.param(b"", "without its final message", id="empty-200"),
    ],
)
async def test_malformed_ollama_stream(ollama: FakeOllama, body: bytes, fragment: str) -> None:
    ollama.queue(Reply(body=body))
    message = await failure_of("ollama", ollama.url, "llama3.2:latest")
    assert fragment in message


def test_ollama_line_cut_after_good_pieces_keeps_them(
    cortan: type[CortanRunner], stored: FakeOllama
) -> None:
    good = b"".join(
        CHUNK.encode() + f'"content":"{word} "}},"done":false}}\n'.encode()
        for word in ("one", "two")
    )
    stored.queue(Reply(body=good + CHUNK.encode() + b'"content":"thr'))
    code, stdout, stderr = ask(cortan)
    assert (code, stdout) == (1, "one two \n")
    assert "cannot parse" in stderr


def test_proxy_error_page_instead_of_json(cortan: type[CortanRunner], stored: FakeOllama) -> None:
    stored.queue(Reply(status=502, body=b"<html><body><h1>502 Bad Gateway</h1></body></html>"))
    code, _, stderr = ask(cortan)
    assert code == 1
    assert "reported an error" in stderr


SSE_CHUNK = b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(
            SSE_CHUNK + b'"choices":[{"index":0,"delta":{"con', "no finish_reason", id="cut"
        ),
        pytest.param(
            SSE_CHUNK
            + b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n',
            "no finish_reason",
            id="no-finish",
        ),
        pytest.param(b"", "no finish_reason", id="empty-200"),
        # Not UTF-8 is replaced (U+FFFD), as on Ollama: what is left holds no event at all.
        pytest.param(bytes(range(256)) * 4, "no finish_reason", id="binary-garbage"),
        pytest.param(b"data: {not json\n\n", "cannot parse", id="not-json"),
        pytest.param(b'data: {"choices": "x"}\n\n', "cannot parse", id="wrong-shape"),
        # Chunks are read as JSON, not as the SDK's models: each shape is checked.
        pytest.param(b"data: 5\n\n", "cannot parse", id="chunk-not-an-object"),
        pytest.param(b'data: {"choices": [{"index": 0}]}\n\n', "cannot parse", id="no-delta"),
        pytest.param(
            b'data: {"choices": [{"index": 0, "delta": {"content": 5}}]}\n\n',
            "cannot parse",
            id="content-not-text",
        ),
        pytest.param(
            b'data: {"choices": [{"index": 0, "delta": {"tool_calls": "x"}}]}\n\n',
            "cannot parse",
            id="tool-calls-not-a-list",
        ),
        pytest.param(
            b'event: error\ndata: {"error": {"message": "boom"}}\n\n', "boom", id="error-event"
        ),
    ],
)
async def test_malformed_openai_stream(
    openai_server: FakeOpenAI, body: bytes, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECURITY_TEST_KEY", "sk-test-key")
    openai_server.queue(Reply(body=body))
    message = await failure_of("openai", openai_server.url + "/v1", "gpt-4o-mini")
    assert fragment in message


@pytest.mark.parametrize("server", ["ollama", "openai"])
def test_connection_cut_mid_answer(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    openai_server: FakeOpenAI,
    server: str,
) -> None:
    env = {"OPENAI_BASE_URL": openai_server.url + "/v1", "OPENAI_API_KEY": "sk-test-key"}
    env |= {"CORTAN_DEFAULT_MODEL": "openai:gpt-4o-mini"} if server == "openai" else {}
    fake = openai_server if server == "openai" else ollama_env
    fake.queue(Reply(pieces=["so ", "far", "lost"], fault="close_mid_stream", fault_after=2))
    code, stdout, stderr = ask(cortan, env=env)
    assert (code, stdout) == (1, "so far\n")
    assert "closed the connection" in stderr or "cut" in stderr


# -- oversized and never ending -------------------------------------------------------------


def run_measured(args: list[str], env: dict[str, str]) -> tuple[int, int, str, int]:
    """Exit code, stdout bytes, stderr, and peak memory (KiB) of one cortan run."""
    peak = Path(tempfile.mkdtemp()) / "peak"
    proc = subprocess.Popen(
        [*measured_command(peak), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    counted = [0]

    def drain() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(65536):
            counted[0] += len(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    proc.wait(timeout=120)
    reader.join(30)
    assert proc.stderr is not None and proc.stdout is not None
    stderr = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    return proc.returncode, counted[0], stderr, int(peak.read_text())


@pytest.mark.parametrize("server", ["ollama", "openai"])
def test_answer_that_never_ends_is_cut_at_max_output_bytes(
    ollama_env: FakeOllama, openai_server: FakeOpenAI, server: str
) -> None:
    env = {"CORTAN_MAX_OUTPUT_BYTES": str(2 << 20), "CORTAN_TIMEOUTS__TOTAL": "60", **ONE_TRY}
    if server == "openai":
        env |= {"OPENAI_BASE_URL": f"{openai_server.url}/v1", "OPENAI_API_KEY": "sk-test-key"}
        env |= {"CORTAN_DEFAULT_MODEL": "openai:gpt-4o-mini"}
    fake = openai_server if server == "openai" else ollama_env
    fake.queue(Reply(pieces=Endless("x" * 65536)))
    code, printed, stderr, peak_kib = run_measured(["ask", "x"], env)
    assert code == 1
    assert_one_sentence(stderr)
    assert "sent more than 2 MiB of answer; stopped there (setting max_output_bytes)" in stderr
    assert 2 << 20 <= printed <= (2 << 20) + 65536 + 1  # what came is kept, up to one piece more
    assert peak_kib < 250 * 1024  # the answer held twice or so, not without limit


def test_answer_that_stops_but_never_ends_times_out(
    cortan: type[CortanRunner], stored: FakeOllama
) -> None:
    stored.queue(Reply(pieces=["partial ", "never"], fault="never_end", fault_after=1))
    code, stdout, stderr = ask(cortan, env={"CORTAN_TIMEOUTS__TOTAL": "1"})
    assert (code, stdout) == (1, "partial \n")
    assert "took longer than 1 s for the whole answer (timeouts.total)" in stderr
    assert stored.wait_disconnect(5)  # cortan hung up: the server is not left streaming


def test_answer_that_trickles_for_ever_times_out(
    cortan: type[CortanRunner], stored: FakeOllama
) -> None:
    stored.queue(Reply(pieces=Endless("."), delay=0.05))
    code, stdout, stderr = ask(cortan, env={"CORTAN_TIMEOUTS__TOTAL": "1"})
    assert code == 1
    assert 5 <= stdout.count(".") <= 40
    assert "(timeouts.total)" in stderr


def test_a_lone_surrogate_in_a_tool_call_fails_nothing(
    cortan: type[CortanRunner], stored: FakeOllama
) -> None:
    """A ``\\ud800`` escape in a call's name or arguments failed the store's record of the
    call, then the next request, as a reply "cortan cannot parse"."""
    call = b'{"function": {"name": "f\\ud800", "arguments": {"\\udfff": 1}}}'
    line = CHUNK.encode() + b'"content": "", "tool_calls": [' + call + b']}, "done": false}\n'
    done = CHUNK.encode() + b'"content": ""}, "done": true, "done_reason": "stop"}\n'
    stored.queue(Reply(body=line + done))
    stored.queue(Reply(pieces=["after ", "the call"]))
    code, stdout, stderr = ask(cortan, "--tools")
    assert (code, stdout) == (0, "after the call\n"), stderr
    assert "no tool named 'f\ufffd'" in stderr
