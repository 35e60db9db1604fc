"""The exit codes, every command, in one place: the table of docs/scripting.md, proved.

Each row runs the real ``cortan`` and checks its exit code and, for a failure, that
stderr holds exactly one ``cortan: error:`` sentence and no traceback. The codes this
file expects are exactly the codes the documented table lists (the last test).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, cortan_command
from tests.keyring_backend import BACKEND, FILE_VARIABLE
from tests.servers import FakeOllama, Reply

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scripting.md"
ROOT = Path(__file__).resolve().parents[2]


class Case(NamedTuple):
    args: tuple[str, ...]
    code: int
    says: str = ""  # a fragment of the one sentence on stderr
    env: tuple[tuple[str, str], ...] = ()
    input: str | None = None
    config: str | None = None  # the config file's text


CASES = {
    # 0: done
    "ask": Case(("ask", "hi"), 0),
    "chat help": Case(("chat", "--help"), 0),
    "models": Case(("models",), 0),
    "roles": Case(("roles",), 0),
    "config show": Case(("config", "show"), 0),
    "keys list": Case(("keys", "list"), 0),
    "sessions list, none yet": Case(("sessions", "list"), 0),
    "logs, none yet": Case(("logs",), 0),
    "version": Case(("--version",), 0),
    # 1: a runtime failure
    "backend down": Case(
        ("ask", "hi"), 1, "cannot reach Ollama", env=(("OLLAMA_HOST", "http://127.0.0.1:9"),)
    ),
    "model missing": Case(("ask", "-m", "ollama:nosuch", "hi"), 1, "nosuch"),
    "input refused": Case(("ask", "x"), 1, "binary data", input="a\x00b"),
    "no usable keyring": Case(("keys", "rm", "openai"), 1, "no usable OS keyring"),
    "no provider answers": Case(
        ("models",), 1, "no provider answered", env=(("OLLAMA_HOST", "http://127.0.0.1:9"),)
    ),
    # 2: a usage or configuration error
    "unknown option": Case(("ask", "--bogus", "hi"), 2, "no such option: --bogus"),
    "bad option value": Case(("sessions", "list", "-n", "0"), 2, "-n"),
    "misspelt command": Case(("sesions",), 2, "no such command 'sesions'"),
    "empty model": Case(("ask", "-m", " ", "hi"), 2, "option --model is empty"),
    "misspelt provider": Case(("ask", "-m", "opneai:x", "hi"), 2, "did you mean 'openai:x'"),
    "models: unknown provider": Case(("models", "-p", "nope"), 2, "no provider named 'nope'"),
    "keys: unknown provider": Case(("keys", "set", "nope"), 2, "no provider named 'nope'"),
    "unknown role": Case(("ask", "--role", "nope", "hi"), 2, "nope"),
    "nothing to continue": Case(("ask", "-c", "hi"), 2, "no earlier conversation"),
    "bad config file": Case(("ask", "hi"), 2, "not valid TOML", config="a = \n"),
    "bad variable": Case(
        ("ask", "hi"), 2, "CORTAN_TIMEOUTS__CONNECT", env=(("CORTAN_TIMEOUTS__CONNECT", "x"),)
    ),
    "CORTAN_CONFIG names no file": Case(
        ("ask", "hi"), 2, "does not exist", env=(("CORTAN_CONFIG", "/nonexistent/cortan.toml"),)
    ),
    "shell without a terminal": Case(("chat",), 2, "needs a terminal"),
    "cmd without words": Case(("cmd",), 2, "say what the command should do"),
    "shell-init for an unknown shell": Case(("shell-init", "tcsh"), 2, "knows bash"),
    # 3: an answer that never became the JSON asked for (the fake answers in prose)
    "cmd: no command in the answer": Case(("cmd", "list", "files"), 3, "not JSON"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_exit_code(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, case: Case
) -> None:
    if case.config is not None:
        config_file.write_text(case.config)
    result = cortan.run(*case.args, env=dict(case.env), input=case.input)
    assert result.code == case.code, result.stderr
    assert "Traceback" not in result.stderr
    if case.code != 0:
        assert_one_sentence(result.stderr)
        assert case.says.lower() in result.stderr.lower()


def test_interrupted_is_130(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["partial ", "more"], fault="never_end", fault_after=1))
    proc = cortan.popen("ask", "--no-stdin", "hi")
    assert proc.stdout is not None
    assert proc.stdout.read(8) == b"partial "
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    proc.stdout.close()
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read().decode()
    proc.stderr.close()


def test_reader_gone_is_141(ollama_env: FakeOllama, tmp_path: Path) -> None:
    ollama_env.queue(Reply(pieces=[f"word{i} " for i in range(500)], delay=0.002))
    command = " ".join(cortan_command())
    script = f'{command} ask --no-stdin hi | head -c 5 >/dev/null; echo "${{PIPESTATUS[0]}}"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.splitlines()[-1] == "141"
    assert done.stderr == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("--help",),
        ("ask", "--help"),
        ("config", "path"),
        ("config", "show"),
        ("roles",),
        ("models", "-p", "ollama"),
        ("completion", "bash"),
    ],
    ids=" ".join,
)
def test_reader_gone_before_the_first_byte_is_141(
    ollama_env: FakeOllama, args: tuple[str, ...]
) -> None:
    """`cortan roles | true`: the whole listing sat in stdout's buffer and met the closed
    pipe only at exit, where Python said "Exception ignored … BrokenPipeError" and exited
    120; help (Click) and tables (Rich) exited 1. The reader left: 141, nothing said."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before cortan wrote anything
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a user's default
    try:
        done = subprocess.run(
            [*cortan_command(), *args],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            timeout=30,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b""


def test_unknown_provider_is_2_for_every_command(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """`models` said 1 and `keys` 2 for the same mistake (issue 21): a name is usage."""
    keyring = {"PYTHON_KEYRING_BACKEND": BACKEND, FILE_VARIABLE: str(tmp_path / "k.json")}
    keyring["PYTHONPATH"] = str(ROOT)
    for args in (("models", "-p", "nope"), ("keys", "set", "nope"), ("keys", "rm", "nope")):
        result = cortan.run(*args, input="sk-x\n", env=keyring)
        assert result.code == 2, (args, result.stderr)
        assert_one_sentence(result.stderr)


def documented_codes() -> set[int]:
    """The codes in the first column of the exit-code table of docs/scripting.md."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}


def test_the_documented_table_is_the_tested_one() -> None:
    # 3: tests/cli/test_models_2026.py (--schema); 4 and 143: tests/batch (some items
    # failed; SIGTERM); 129 and 143 for ask: tests/cli/test_ask.py; 130 and 141 above;
    # 5 (cmd: nothing ran): tests/command/test_cmd.py and tests/e2e/test_command_mode.py.
    tested = {case.code for case in CASES.values()} | {3, 4, 5, 129, 130, 141, 143}
    assert documented_codes() == tested


def documented_row(code: int) -> str:
    """The meaning the exit-code table of docs/scripting.md gives ``code``."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"^\| {code} \| (.*)$", table, flags=re.MULTILINE)
    assert found, code
    return found.group(1)


def test_a_code_of_one_command_names_it() -> None:
    """Codes past 2 belong to a few commands, and their row says which: `cortan cmd`'s
    3 (no command JSON, even after a repair) was missing from the one table (verify21)."""
    for name, case in CASES.items():
        if case.code > 2:
            assert f"`cortan {case.args[0]}`" in documented_row(case.code), name


def documented_kinds() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("Error kinds:", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE))


def test_every_error_kind_is_documented() -> None:
    """`--json`'s error.kind: the list in docs/scripting.md is the error tree's (issue 21)."""
    import importlib

    for module in ("cortan.engine.guard", "cortan.engine.schema"):  # `secret`, `schema`
        importlib.import_module(module)
    from cortan.core.errors import CortanError

    # An ObserverError names its kind when raised: "observer", or "output_closed" when
    # stdout is gone, where no report can be written (so that one is not listed).
    kinds = {"observer"}
    classes: list[type[CortanError]] = [CortanError]
    while classes:
        cls = classes.pop()
        kinds.add(cls.kind)
        classes.extend(cls.__subclasses__())
    assert documented_kinds() == kinds
