"""``cortan cmd --yes``, stopped while the command it ran is still running.

SIGTERM and SIGHUP that stop cortan are passed on to the command's whole process
group (the shell, what it runs, what it left in the background), cortan waits for it
a bounded time, kills what is left, and exits 143 or 129: nothing it started outlives
it. The command is a script that says which signal it got and writes its process ids.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
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
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def wait_for(path: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def start(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    config_file: Path,
    tmp_path: Path,
    script: str,
) -> tuple[subprocess.Popen[bytes], Path]:
    config_file.write_text('[approval]\nallow_commands = ["bash *"]\n')
    job = tmp_path / "job.sh"
    job.write_text(script.replace("DIR", str(tmp_path)))
    ollama_env.queue(proposal(f"bash {job}"))
    return cortan.popen("cmd", "--yes", "run the job", cwd=tmp_path), tmp_path


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
    tmp_path: Path,
) -> None:
    proc, folder = start(cortan, ollama_env, config_file, tmp_path, TRAPS)
    wait_for(folder / "shell")
    proc.send_signal(signum)
    proc.communicate(timeout=10)
    assert proc.returncode == code
    assert (folder / "got").read_text() == f"{name}\n"  # the shell had it before cortan left
    assert gone(int((folder / "shell").read_text()))
    assert gone(int((folder / "sleeper").read_text()))  # its background job too


def test_a_command_that_ignores_the_signal_is_killed_after_the_grace(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    script = "trap '' TERM HUP\necho $$ > DIR/shell\nsleep 60 &\necho $! > DIR/sleeper\nwait\n"
    proc, folder = start(cortan, ollama_env, config_file, tmp_path, script)
    wait_for(folder / "shell")
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    took = time.monotonic() - began
    assert proc.returncode == 143
    assert GRACE - 0.5 < took < GRACE + 3
    assert gone(int((folder / "shell").read_text()))
    assert gone(int((folder / "sleeper").read_text()))
