"""``cortan serve`` as a user runs it: the token, refusals, SIGTERM mid-stream."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from cortan.store.sessions import SessionStore
from tests.conftest import CortanRunner, assert_one_sentence
from tests.keyring_backend import BACKEND, FILE_VARIABLE
from tests.servers import FakeOllama, Reply

TOKEN = "cli-token-0123456789abcdef"
REPO = str(Path(__file__).parents[2])


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keyring.json"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    monkeypatch.setenv(FILE_VARIABLE, str(path))
    monkeypatch.setenv("PYTHONPATH", REPO)
    return path


def test_the_token_is_made_once_kept_in_the_keyring_and_printed(
    cortan: type[CortanRunner], file_keyring: Path
) -> None:
    first = cortan.run("serve", "--print-token")
    second = cortan.run("serve", "--print-token")
    assert first.code == 0 and first.stdout == second.stdout
    token = first.stdout.strip()
    assert token.startswith("ctk-") and len(token) > 40
    assert token in file_keyring.read_text()
    renewed = cortan.run("serve", "--new-token")
    assert renewed.code == 0 and renewed.stdout.strip() not in ("", token)


def test_the_environment_variable_wins_and_must_be_long(cortan: type[CortanRunner]) -> None:
    assert cortan.run("serve", "--print-token", env={"CORTAN_SERVE_TOKEN": TOKEN}).stdout == (
        TOKEN + "\n"
    )
    short = cortan.run("serve", "--print-token", env={"CORTAN_SERVE_TOKEN": "abc"})
    assert short.code == 2
    assert_one_sentence(short.stderr)


def test_no_keyring_and_no_variable_is_one_sentence(cortan: type[CortanRunner]) -> None:
    done = cortan.run("serve", "--port", "0")
    assert done.code == 1
    assert_one_sentence(done.stderr)
    assert "CORTAN_SERVE_TOKEN" in done.stderr


def test_no_token_beyond_loopback_is_refused(cortan: type[CortanRunner]) -> None:
    done = cortan.run("serve", "--host", "0.0.0.0", "--no-token")
    assert done.code == 2
    assert "loopback only" in done.stderr


def test_a_port_in_use_is_one_sentence(cortan: type[CortanRunner]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = cortan.run("serve", "--port", port, env={"CORTAN_SERVE_TOKEN": TOKEN})
    assert done.code == 1
    assert_one_sentence(done.stderr)
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr


def start(
    cortan: type[CortanRunner], *args: str, **env: str
) -> tuple[subprocess.Popen[bytes], str, str]:
    """``cortan serve`` running: the process, its URL, and what it said before the URL."""
    proc = cortan.popen("serve", "--port", "0", *args,
                        env={**os.environ, "CORTAN_SERVE_TOKEN": TOKEN, **env})  # fmt: skip
    assert proc.stderr is not None
    lines = []
    while "cortan serve: listening on" not in (line := proc.stderr.readline().decode()):
        lines.append(line)
        assert line, "".join(lines)
    return proc, line.split("listening on ")[1].strip(), "".join(lines)


def test_beyond_loopback_it_says_so_loudly(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    proc, _, before = start(cortan, "--host", "0.0.0.0")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "cortan: warning: listening on 0.0.0.0, beyond this machine" in before


def test_on_every_address_the_banner_names_ones_clients_can_use(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # Before: "listening on http://0.0.0.0:PORT", an address to bind, not to connect to.
    proc, url, _ = start(cortan, "--host", "0.0.0.0")
    assert proc.stderr is not None
    banner: list[str] = []
    while "Ctrl-C stops" not in (line := proc.stderr.readline().decode()):
        assert line, "".join(banner)
        banner.append(line)
    port = url.rsplit(":", 1)[1]
    assert url == f"http://127.0.0.1:{port}"
    assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"
    elsewhere = [line for line in banner if line.startswith("  elsewhere:")]
    assert len(elsewhere) == 1, banner
    assert f":{port}" in elsewhere[0]
    assert "0.0.0.0" not in "".join(banner)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_without_a_token_the_banner_asks_for_none(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    proc, _, _ = start(cortan, "--no-token")
    assert proc.stderr is not None
    banner: list[str] = []  # read before stopping it: a SIGTERM at once may come before the banner
    while "Ctrl-C stops" not in (line := proc.stderr.readline().decode()):
        assert line, "".join(banner)
        banner.append(line)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "the token" not in "".join(banner)
    assert "API key: any (none is checked)" in "".join(banner)


def test_sigterm_mid_stream_drains_records_the_partial_and_exits_0(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    ollama_env.queue(Reply(pieces=["piece "] * 400, delay=0.05))
    proc, url, _ = start(cortan, "--quiet", CORTAN_SERVE__DRAIN_TIMEOUT="0.5")
    client = openai.OpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0)
    stream = client.chat.completions.create(
        model="ollama:llama3.2:latest", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = iter(stream)
    next(chunks)
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(openai.APIError, match="cortan serve is stopping"):
        for _ in chunks:
            pass
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    assert ollama_env.wait_disconnect(timeout=2)
    with SessionStore.open(isolated_env / "data") as store:
        (conversation,) = store.list_conversations()
        answer = store.messages(conversation.id)[-1]
    assert answer.status == "interrupted" and answer.content.startswith("piece")
    assert conversation.client == f"openai OpenAI/Python {openai.__version__}"


def test_a_request_id_leads_to_its_conversation(
    cortan: type[CortanRunner], gateway: Any, ollama_env: FakeOllama
) -> None:
    """The id a client had back in X-Request-ID was stored, and then found by no command."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.token, max_retries=0)
    client.chat.completions.create(
        model="ollama:llama3.2:latest", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-Request-ID": "edit-7", "X-Cortan-Client": "my-editor"},
    )  # fmt: skip
    gateway.commit()
    shown = cortan.run("sessions", "show", "edit-7")
    assert shown.code == 0, shown.stderr
    assert "openai my-editor · request edit-7" in shown.stdout.splitlines()[0]
    assert "Hello, world!" in shown.stdout
    (listed,) = json.loads(cortan.run("sessions", "list", "--json").stdout)
    assert (listed["client"], listed["request_id"]) == ("openai my-editor", "edit-7")


def test_a_stderr_nobody_reads_never_stops_the_gateway(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """An editor that starts ``cortan serve`` with stderr on a pipe it never reads: the
    pipe filled after about 430 access-log lines, the next write blocked the event loop,
    and every request hung, SIGTERM too (it ignored it for 29 minutes once)."""
    proc, url, _ = start(cortan)  # the banner read, then stderr is never read again
    body = {"model": "ollama:llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for _ in range(1200):  # some 150 KB of log lines: twice what a pipe holds
            reply = client.post(url + "/api/chat", json={**body, "stream": False})
            assert reply.status_code == 200
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=15)  # still not reading stderr
    finally:
        _, err = proc.communicate(timeout=15)
    assert code == 0
    # What the pipe held came out; the rest waited for a reader, and at exit for 2 s more.
    assert err.decode().count("ollama finished") > 300
