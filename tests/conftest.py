"""Shared fixtures: an isolated home for every test, loopback servers, a cortan runner.

Only what lies outside cortan is replaced: the environment, the folders, the
keyring backend and the network (by loopback servers speaking the real
protocols). cortan's own classes are never patched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import FakeOllama, FakeOpenAI

STRIPPED_PREFIXES = ("CORTAN_", "OPENAI_", "OLLAMA_")
STRIPPED = (
    "NO_COLOR",
    "FORCE_COLOR",
    "COLUMNS",
    "LINES",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "VISUAL",
    "EDITOR",
    "SHELL",  # CI has none: cortan then runs commands with /bin/sh, here too
)


def pytest_configure(config: pytest.Config) -> None:
    """Give the test run the stdin and Ctrl-C every cortan it starts should inherit.

    Stdin is /dev/null: under CI it may be closed (then the first socket a test opens
    becomes fd 0, and a cortan that inherits it would wait for input on it) or a
    terminal; tests that need stdin pass it explicitly. A run started in the background
    (`nohup`, `&`, some CI runners) has SIGINT ignored, which every child keeps, so the
    Ctrl-C tests would wait on a process that cannot hear it: with a handler here,
    children start with the default disposition, as under a terminal.
    """
    devnull = os.open(os.devnull, os.O_RDONLY)
    if devnull != 0:
        os.dup2(devnull, 0)
        os.close(devnull)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config file, data folder and keyring for each test; no user settings leak in."""
    for name in list(os.environ):
        if name.startswith(STRIPPED_PREFIXES) or name in STRIPPED:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    config = tmp_path / "config.toml"
    config.touch()  # CORTAN_CONFIG must name a file that exists
    monkeypatch.setenv("CORTAN_CONFIG", str(config))
    monkeypatch.setenv("CORTAN_DATA_DIR", str(tmp_path / "data"))
    # No test may reach a real keyring (D-Bus may hang); tests that need one set it.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("TERM", "xterm-256color")
    return tmp_path


@pytest.fixture
def config_file(isolated_env: Path) -> Path:
    return isolated_env / "config.toml"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.api_key = "sk-test-key"
        yield server


@pytest.fixture
def ollama_env(ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> FakeOllama:
    """cortan's default provider pointed at the fake Ollama, default model on it."""
    monkeypatch.setenv("OLLAMA_HOST", ollama.url)
    monkeypatch.setenv("CORTAN_DEFAULT_MODEL", "ollama:llama3.2:latest")
    return ollama


@pytest.fixture
def openai_env(openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    monkeypatch.setenv("CORTAN_DEFAULT_MODEL", "openai:gpt-4o-mini")
    return openai_server


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def cortan_command() -> list[str]:
    """The installed ``cortan`` script beside this interpreter, else ``python -m cortan``."""
    script = Path(sys.executable).parent / "cortan"
    if script.exists():
        return [str(script)]
    found = shutil.which("cortan")
    return [found] if found else [sys.executable, "-m", "cortan"]


def run_cortan(
    *args: str,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    stdin: int | None = None,
) -> Result:
    """Run the real cortan as a user would: argv, stdin, stdout, stderr, exit code."""
    data = input.encode() if isinstance(input, str) else input
    done = subprocess.run(
        [*cortan_command(), *args],
        input=data,
        # Never the test run's own stdin: under CI it may be closed, or a socket.
        stdin=(subprocess.DEVNULL if stdin is None else stdin) if data is None else None,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    return Result(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture
def cortan() -> type[CortanRunner]:
    return CortanRunner


class CortanRunner:
    """Namespace for running cortan in tests (``cortan.run(...)``, ``cortan.popen(...)``)."""

    run = staticmethod(run_cortan)

    @staticmethod
    def popen(*args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            [*cortan_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kwargs,
        )

    @staticmethod
    def interrupt(proc: subprocess.Popen[bytes], timeout: float = 10) -> Result:
        """Send Ctrl-C (SIGINT) and collect what the process wrote."""
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out.decode(), err.decode())


def assert_one_sentence(stderr: str) -> None:
    """A failure is one clear line on stderr, never a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("cortan: error:")]
    assert len(lines) == 1, stderr


PEAK_RSS = Path(__file__).parent / "peak_rss.py"


def measured_command(out: Path) -> list[str]:
    """cortan wrapped so that ``out`` receives its own peak memory (see peak_rss.py)."""
    return [sys.executable, str(PEAK_RSS), str(out), *cortan_command()]


# Runs the `cortan` entry point with argv[3:]; at exit, writes the JSON of the Python
# expression argv[2], evaluated there, to argv[1]. atexit runs even through exit_now.
EXIT_PROBE = """
import atexit, gc, json, sys
out, expression = sys.argv[1], sys.argv[2]
def dump():
    with open(out, "w") as f:
        json.dump(eval(expression), f)
atexit.register(dump)
sys.argv = ["cortan", *sys.argv[3:]]
from cortan.cli import main
main()
"""


def probed_command(out: Path, expression: str) -> list[str]:
    """cortan (its arguments to follow) that writes ``expression``'s value to ``out`` as it exits.

    The expression sees ``sys`` and ``gc``: ``sorted(sys.modules)`` says what a
    command loaded, ``gc.isenabled()`` how it left the collector.
    """
    return [sys.executable, "-c", EXIT_PROBE, str(out), expression]


def run_probed(
    out: Path, expression: str, *args: str
) -> tuple[object, subprocess.CompletedProcess[str]]:
    """Run ``cortan ARGS`` under :func:`probed_command`: the value seen at exit, and the run."""
    done = subprocess.run(
        [*probed_command(out, expression), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )
    assert out.exists(), done.stderr
    return json.loads(out.read_text()), done


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.01)
    return False
