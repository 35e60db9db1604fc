"""`cortan keys`, and the promise that a key never shows up anywhere it should not.

Subprocesses get a keyring through keyring's own variable,
``PYTHON_KEYRING_BACKEND``, naming the file-backed test backend in
tests/keyring_backend.py; without it they get the isolation fixture's failing
backend, which stands for a headless box with no keyring at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, Result, assert_one_sentence, cortan_command
from tests.keyring_backend import BACKEND, FILE_VARIABLE
from tests.servers import FakeOpenAI, Reply

ROOT = Path(__file__).resolve().parents[2]
LEAK = "sk-LEAKCHECK-9f8e7d6c5b4a"


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The OS keyring's stand-in, outside the config and data folders."""
    folder = tmp_path / "os-keyring"
    folder.mkdir()
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    monkeypatch.setenv(FILE_VARIABLE, str(folder / "entries.json"))
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    return folder / "entries.json"


@pytest.fixture
def work(config_file: Path, openai_server: FakeOpenAI) -> FakeOpenAI:
    """A named OpenAI-compatible provider with its own key variable, as the default."""
    config_file.write_text(
        'default_model = "work:gpt-4o-mini"\n'
        "[providers.work]\n"
        'kind = "openai"\n'
        f'base_url = "{openai_server.url}/v1"\n'
        'api_key_env = "WORK_KEY"\n'
    )
    return openai_server


def test_set_list_use_and_remove_a_key(
    cortan: type[CortanRunner], work: FakeOpenAI, file_keyring: Path
) -> None:
    stored = cortan.run("keys", "set", "work", input="sk-work-123\n")
    assert stored.code == 0, stored.stderr
    assert stored.stdout == ""
    assert "stored the key for 'work' in the OS keyring" in stored.stderr
    assert json.loads(file_keyring.read_text()) == {"cortan/work": "sk-work-123"}

    listed = cortan.run("keys", "list")
    assert listed.code == 0, listed.stderr
    (row,) = [line.split() for line in listed.stdout.splitlines() if line.startswith("work")]
    assert row == ["work", "openai", "set", "keyring", "cortan/work"]

    work.api_key = "sk-work-123"
    asked = cortan.run("ask", "hi")
    assert asked.code == 0, asked.stderr
    assert work.chat_requests[0].headers["authorization"] == "Bearer sk-work-123"

    assert cortan.run("keys", "rm", "work").code == 0
    rows = json.loads(cortan.run("keys", "list", "--json").stdout)
    assert {"provider": "work", "key": "-", "needs_key": False}.items() <= rows[-1].items()
    again = cortan.run("keys", "rm", "work")
    assert again.code == 1
    assert_one_sentence(again.stderr)
    assert "holds no key for 'work'" in again.stderr


def test_without_a_keyring_the_error_names_the_variable(
    cortan: type[CortanRunner], work: FakeOpenAI, tmp_path: Path
) -> None:
    result = cortan.run("keys", "set", "work", input=f"{LEAK}\n")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "no usable OS keyring was found: set WORK_KEY in the environment instead" in (
        result.stderr
    )
    assert_not_written(tmp_path)


def test_openai_without_a_keyring(cortan: type[CortanRunner]) -> None:
    result = cortan.run("keys", "set", "openai", input="sk-x\n")
    assert result.code == 1
    assert "set OPENAI_API_KEY in the environment instead" in result.stderr


NULL_KEYRING = "keyring.backends.null.Keyring"  # keeps nothing and says nothing


def test_a_keyring_that_keeps_nothing_is_no_keyring(
    cortan: type[CortanRunner], work: FakeOpenAI, tmp_path: Path
) -> None:
    """keyring's null backend (the usual advice for headless boxes) accepts and drops a key.

    `keys set` must not claim "stored" then (issue 21): it reads the entry back.
    """
    env = {"PYTHON_KEYRING_BACKEND": NULL_KEYRING}
    result = cortan.run("keys", "set", "work", input=f"{LEAK}\n", env=env)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "stored" not in result.stderr
    assert "did not keep the key: set WORK_KEY in the environment instead" in result.stderr
    assert_not_written(tmp_path)


def test_rm_says_when_there_was_nothing_to_remove(
    cortan: type[CortanRunner], work: FakeOpenAI
) -> None:
    result = cortan.run("keys", "rm", "work", env={"PYTHON_KEYRING_BACKEND": NULL_KEYRING})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "holds no key for 'work'; nothing was removed" in result.stderr
    assert "removed the key" not in result.stderr


@pytest.mark.parametrize(
    ("provider", "fragment"),
    [("nope", "no provider named 'nope'"), ("ollama", "takes no API key")],
)
def test_set_refuses_what_takes_no_key(
    cortan: type[CortanRunner], file_keyring: Path, provider: str, fragment: str
) -> None:
    result = cortan.run("keys", "set", provider, input="sk-x\n")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert fragment in result.stderr


def test_empty_or_odd_keys_are_refused(
    cortan: type[CortanRunner], work: FakeOpenAI, file_keyring: Path
) -> None:
    assert "no key was given" in cortan.run("keys", "set", "work", input="\n").stderr
    odd = cortan.run("keys", "set", "work", input="sk-a\x1bb\n")
    assert odd.code == 2
    assert "control characters" in odd.stderr
    assert not file_keyring.exists()


def test_a_variable_set_too_is_pointed_out(
    cortan: type[CortanRunner], work: FakeOpenAI, file_keyring: Path
) -> None:
    result = cortan.run("keys", "set", "work", input="sk-1\n", env={"WORK_KEY": "sk-2"})
    assert result.code == 0
    assert "WORK_KEY is set in the environment and is used before the keyring" in result.stderr
    listed = cortan.run("keys", "list", env={"WORK_KEY": "sk-2"})
    assert "env WORK_KEY" in listed.stdout


@pytest.mark.e2e
def test_set_on_a_terminal_asks_without_echo(
    work: FakeOpenAI, file_keyring: Path, tmp_path: Path
) -> None:
    import pexpect

    child = pexpect.spawn(
        cortan_command()[0],
        [*cortan_command()[1:], "keys", "set", "work"],
        env=dict(os.environ),
        timeout=20,
        encoding="utf-8",
    )
    child.expect("API key for work \\(not shown\\): ")
    child.sendline(LEAK)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert LEAK not in (child.before or "")
    assert json.loads(file_keyring.read_text()) == {"cortan/work": LEAK}


def test_a_key_never_leaks(
    cortan: type[CortanRunner], work: FakeOpenAI, file_keyring: Path, tmp_path: Path
) -> None:
    """Every command that touches the key, with --debug, then grep everything cortan wrote."""
    work.api_key = LEAK
    work.queue(Reply(pieces=["answer ", "mentioning nothing"]))
    runs: list[Result] = [cortan.run("keys", "set", "work", input=f"{LEAK}\n")]
    runs += [
        cortan.run("--debug", "keys", "list"),
        cortan.run("--debug", "ask", "hi"),
        cortan.run("--debug", "ask", "--json", "-m", "work:no-such-model", "hi"),
        cortan.run("--debug", "models"),
        cortan.run("--debug", "doctor", "--json"),
        cortan.run("--debug", "config", "show"),
        cortan.run("--debug", "ask", "hi", env={"WORK_KEY": LEAK}),
    ]
    work.api_key = "sk-some-other-key"  # now the server refuses ours: the 401 path
    runs.append(cortan.run("--debug", "ask", "hi", env={"CORTAN_RETRY__ATTEMPTS": "1"}))
    assert [r.code for r in runs] == [0, 0, 0, 1, 0, 0, 0, 0, 1], [r.stderr for r in runs]
    assert "DEBUG" in runs[2].stderr  # --debug really logged
    for run in runs:
        for fragment in (LEAK, LEAK[-10:]):
            assert fragment not in run.stdout
            assert fragment not in run.stderr
    assert_not_written(tmp_path)


def assert_not_written(tmp_path: Path) -> None:
    """No file under the test's folders (config, data, home) holds the key."""
    for path in tmp_path.rglob("*"):
        if path.is_file() and "os-keyring" not in path.parts:
            data = path.read_bytes()
            assert LEAK.encode() not in data, path
            assert LEAK[-10:].encode() not in data, path
