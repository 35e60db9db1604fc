"""Files on disk are owner-only, a readable config naming keys is flagged, logs are redacted."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.cli.logging_setup import setup_logging
from cortan.config.paths import ensure_private_dir
from cortan.store import get_store_path
from tests.conftest import CortanRunner, cortan_command
from tests.servers import FakeOllama, FakeOpenAI, Reply

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab7cDe0fGh3iJk6lMn9oPq2rS"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- owner-only files -----------------------------------------------------------------------


def test_private_dir_is_created_and_tightened(tmp_path: Path) -> None:
    fresh = ensure_private_dir(tmp_path / "a" / "b")
    assert mode(fresh) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    assert mode(ensure_private_dir(loose)) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder someone else owns")
def test_private_dir_leaves_someone_elses_folder_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chown(shared, 12345, 12345)
    assert mode(ensure_private_dir(shared)) == 0o755


def test_store_is_private_even_with_an_open_umask(
    ollama_env: FakeOllama, isolated_env: Path
) -> None:
    done = subprocess.run(
        [*cortan_command(), "ask", "--no-stdin", "hi"],
        capture_output=True,
        timeout=30,
        check=False,
        preexec_fn=lambda: os.umask(0),  # runs in the child, before cortan starts
    )
    assert done.returncode == 0, done.stderr
    data = isolated_env / "data"
    assert mode(data) == 0o700
    for path in data.iterdir():  # the store and its -wal / -shm files
        assert mode(path) == 0o600, path
    assert get_store_path(data).exists()


def test_history_is_private_even_with_an_open_umask(tmp_path: Path) -> None:
    history = tmp_path / "new" / "history"
    code = (
        "import os, sys; from pathlib import Path; os.umask(0);"
        "from cortan.shell.prompt import make_history; make_history(Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(history)], check=True, timeout=30)
    assert mode(history) == 0o600
    assert mode(history.parent) == 0o700


# -- a config file that others can read ---------------------------------------------------------

NAMING_KEYS = '[providers.work]\nkind = "openai"\napi_key_cmd = "pass show work/api"\n'


@pytest.mark.parametrize(
    ("content", "file_mode", "warned"),
    [
        (NAMING_KEYS, 0o644, True),
        (
            NAMING_KEYS.replace("api_key_cmd", "api_key_env").replace("pass show work/api", "W"),
            0o640,
            True,
        ),
        (NAMING_KEYS, 0o600, False),
        ('system = "Be brief."\n', 0o644, False),
    ],
)
def test_warning_for_a_config_others_can_read(
    cortan: type[CortanRunner], config_file: Path, content: str, file_mode: int, warned: bool
) -> None:
    config_file.write_text(content)
    config_file.chmod(file_mode)
    result = cortan.run("config", "show")
    assert result.code == 0, result.stderr
    warning = f"cortan: warning: config file {config_file} names API key sources and other users"
    assert (warning in result.stderr) is warned
    assert result.stderr.count("\n") == int(warned)
    if warned:
        assert f"run `chmod 600 {config_file}`" in result.stderr


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def leaky_server(openai_server: FakeOpenAI) -> dict[str, str]:
    """A server whose error message repeats the key; cortan retries, logging each failure."""
    openai_server.api_key = KEY
    openai_server.queue(Reply(status=500, error=f"bad key {KEY} and AWS AKIAZ7X3Q2LBM4HN5KTD"))
    return {
        "OPENAI_BASE_URL": openai_server.url + "/v1",
        "OPENAI_API_KEY": KEY,
        "CORTAN_DEFAULT_MODEL": "openai:gpt-4o-mini",
        "CORTAN_RETRY__ATTEMPTS": "2",
        "CORTAN_RETRY__BASE_DELAY": "0",
    }


def log_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("cortan: error:")]


def test_debug_logs_are_redacted(cortan: type[CortanRunner], leaky_server: dict[str, str]) -> None:
    result = cortan.run("--debug", "ask", "--no-stdin", "hi", env=leaky_server)
    assert result.code == 0, result.stderr
    lines = log_lines(result.stderr)
    assert any("attempt 1 of openai:gpt-4o-mini failed" in line for line in lines), lines
    assert any("[redacted]" in line for line in lines)
    for line in lines:
        assert KEY[8:30] not in line and "AKIAZ7X3Q2LBM4HN5KTD" not in line, line


def test_json_logs_are_redacted_json_lines(
    cortan: type[CortanRunner], leaky_server: dict[str, str]
) -> None:
    env = {**leaky_server, "CORTAN_LOG_LEVEL": "debug", "CORTAN_LOG_FORMAT": "json"}
    result = cortan.run("ask", "--no-stdin", "hi", env=env)
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in log_lines(result.stderr)]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == "cortan.engine.answering" for r in records)
    assert KEY[8:30] not in result.stderr and "AKIAZ7X3Q2LBM4HN5KTD" not in result.stderr


def test_logs_are_off_by_default(cortan: type[CortanRunner], leaky_server: dict[str, str]) -> None:
    result = cortan.run("ask", "--no-stdin", "hi", env=leaky_server)
    assert (result.code, result.stderr) == (0, "")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    setup_logging(False)  # back to off, for the tests that follow


def test_tracebacks_only_at_debug(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORTAN_LOG_LEVEL", "error")
    setup_logging(False, stream=stream)
    try:
        raise ValueError(f"token={KEY}")
    except ValueError:
        logging.getLogger("cortan.test").exception("handler failed for %s", "Bearer abcdef123456")
    text = stream.getvalue()
    assert text == (
        "cortan: ERROR cortan.test: handler failed for Bearer [redacted] "
        "(ValueError: token=[redacted])\n"
    )
    stream.seek(0), stream.truncate()
    setup_logging(True, stream=stream)
    try:
        raise ValueError(f"token={KEY}")
    except ValueError:
        logging.getLogger("cortan.test").exception("again")
    assert "Traceback" in stream.getvalue() and KEY not in stream.getvalue()


def test_json_format_fields(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORTAN_LOG_LEVEL", "INFO")
    monkeypatch.setenv("CORTAN_LOG_FORMAT", "json")
    setup_logging(False, stream=stream)
    logging.getLogger("cortan.x").info("sent %s", "DB_PASSWORD=s3cr3tP4ss")
    logging.getLogger("cortan.x").debug("not shown at INFO")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "info" and record["logger"] == "cortan.x"
    assert record["message"] == "sent DB_PASSWORD=[redacted]"


def test_log_lines_cannot_drive_the_terminal(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTAN_LOG_LEVEL", "warning")
    setup_logging(False, stream=stream)
    logging.getLogger("httpx").warning("server said %s", "\x1b]0;pwned\x07\x9b2J")
    assert stream.getvalue() == "cortan: WARNING httpx: server said ␛]0;pwned␇<U+009B>2J\n"
