"""``cortan cmd --yes``, stopped while the command it ran is still running.

SIGTERM and SIGHUP that stop cortan are passed on to the command's whole process
group (the shell, what it runs, what it left in the background), cortan waits for it
a bounded time, kills what is left, and exits 143 or 129: nothing it started outlives
it. The command is a script that says which signal it got and writes its process ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CortanRunner
from tests.servers import FakeOllama, Reply

GRACE = 2.0  # cortan.command.execute._GRACE


def proposal(command: str) -> Reply:
    return Reply(pieces=[json.dumps({"command": command, "explanation": "runs it"})])


def gone(pid: int, timeout: float = 5) -> bool:
    """The process has exited (a zombie waiting for its parent counts as exited)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def wait_for(path: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.fixture
def started() -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    """What each test started, killed afterwards whatever the test's end: a cortan or a
    command left running holds pipes whose warnings would fail the next test instead."""
    runs: list[tuple[subprocess.Popen[bytes], Path]] = []
    yield runs
    for proc, folder in runs:
        for name in ("shell", "sleeper"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((folder / name).read_text()), signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def start(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    config_file: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
    script: str,
) -> tuple[subprocess.Popen[bytes], Path]:
    folder = config_file.parent
    config_file.write_text('[approval]\nallow_commands = ["bash *"]\n')
    job = folder / "job.sh"
    job.write_text(script.replace("DIR", str(folder)))
    ollama_env.queue(proposal(f"bash {job}"))
    # bash runs it, not /bin/sh: dash would fork bash under it and report its own
    # death by the signal instead of the status the script chose.
    env = {**os.environ, "SHELL": "/bin/bash"}
    started.append((cortan.popen("cmd", "--yes", "run the job", cwd=folder, env=env), folder))
    return started[-1]


def logged_status(cortan: type[CortanRunner]) -> int | None:
    status: int | None = json.loads(cortan.run("grants", "log", "--json").stdout)[-1]["status"]
    return status


def ended(proc: subprocess.Popen[bytes], folder: Path, timeout: float = 10) -> None:
    """Wait for cortan to exit and every reader of its output to close; on a timeout,
    say which of the command's processes still ran."""
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        alive = [
            f"{name} {pid} {'exited' if gone(pid, 0) else 'running'}"
            for name in ("shell", "sleeper")
            if (folder / name).exists() and (pid := int((folder / name).read_text() or 0))
        ]
        pytest.fail(f"cortan {'exited' if proc.poll() is not None else 'ran on'}: {alive}")


def signalled(proc: subprocess.Popen[bytes], folder: Path, signum: int = signal.SIGTERM) -> float:
    """Send ``signum`` once the command runs; the seconds until cortan and every reader of
    its output were done."""
    wait_for(folder / "shell")
    began = time.monotonic()
    proc.send_signal(signum)
    ended(proc, folder)
    return time.monotonic() - began


TRAPS = """\
trap 'echo TERM >> DIR/got; exit 7' TERM
trap 'echo HUP >> DIR/got; exit 7' HUP
sleep 60 &
echo $! > DIR/sleeper
echo $$ > DIR/shell
wait
"""


@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGTERM, 143, "TERM"), (signal.SIGHUP, 129, "HUP")]
)
def test_the_signal_is_passed_on_to_the_whole_command(
    signum: int,
    code: int,
    name: str,
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    config_file: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    proc, folder = start(cortan, ollama_env, config_file, started, TRAPS)
    signalled(proc, folder, signum)
    assert proc.returncode == code
    assert (folder / "got").read_text() == f"{name}\n"  # the shell had it before cortan left
    assert logged_status(cortan) == 7  # how it ended is in the decision log
    assert gone(int((folder / "shell").read_text()))
    assert gone(int((folder / "sleeper").read_text()))  # its background job too


def test_a_command_that_ignores_the_signal_is_killed_after_the_grace(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    config_file: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    script = "trap '' TERM HUP\nsleep 60 &\necho $! > DIR/sleeper\necho $$ > DIR/shell\nwait\n"
    proc, folder = start(cortan, ollama_env, config_file, started, script)
    took = signalled(proc, folder)
    assert proc.returncode == 143
    assert GRACE - 0.5 < took < GRACE + 3
    assert gone(int((folder / "shell").read_text()))
    assert gone(int((folder / "sleeper").read_text()))
    assert logged_status(cortan) == 128 + signal.SIGKILL


def test_what_the_shell_left_behind_is_killed_after_the_grace(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    config_file: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    """The shell obeys and exits; a background job ignoring the signal would outlive
    cortan, holding its stdout open for whoever reads it."""
    script = (
        "(trap '' TERM HUP; exec sleep 60) &\necho $! > DIR/sleeper\n"
        "trap 'exit 7' TERM\necho $$ > DIR/shell\nwait\n"
    )
    proc, folder = start(cortan, ollama_env, config_file, started, script)
    took = signalled(proc, folder)
    assert proc.returncode == 143
    assert GRACE - 0.5 < took < GRACE + 3
    assert gone(int((folder / "sleeper").read_text()))


def test_a_command_that_obeys_at_once_is_not_waited_for(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    config_file: Path,
    started: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    proc, folder = start(cortan, ollama_env, config_file, started, TRAPS)
    took = signalled(proc, folder)
    assert proc.returncode == 143
    assert took < GRACE - 0.5  # the group emptied: no grace spent
