"""`cortan ask` with stdout a file and stderr a terminal: a thinking model's reasoning
shows on the terminal, dim, whatever form the answer takes (docs/models.md).

stderr is a real pty here (the reasoning is only ever shown on a terminal); stdout a
file, which must hold the answer alone.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cortan_command
from tests.servers import FakeOllama, Reply

pytestmark = pytest.mark.e2e


def run_with_a_terminal_for_stderr(args: list[str], stdout: Path) -> tuple[int, str]:
    """Exit code and what reached the terminal; the child's stdout goes to ``stdout``."""
    leader, follower = os.openpty()
    seen = bytearray()
    with stdout.open("wb") as out:
        child = subprocess.Popen(
            [*cortan_command(), *args], stdin=subprocess.DEVNULL, stdout=out, stderr=follower
        )
    os.close(follower)
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                raise AssertionError(f"cortan said nothing for 30 s; so far: {bytes(seen)!r}")
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not data:
                break
            seen += data
        styled = seen.decode("utf-8", "replace")
        return child.wait(10), re.sub(r"\x1b\[[0-9;]*m", "", styled)  # the dim, taken off
    finally:
        os.close(leader)
        if child.poll() is None:
            child.kill()


@pytest.mark.parametrize(
    ("flags", "pieces", "answer"),
    [
        ([], ["4"], "4\n"),
        (["-x"], ["Here:\n\n```\n", "4\n", "```\n"], "4\n"),
        (["--schema", "n int"], ['{"n": 4}'], '{\n  "n": 4\n}\n'),
        (["--no-stream"], ["4"], "4\n"),
    ],
    ids=["pipe", "extract", "schema", "no-stream"],
)
def test_reasoning_shows_on_the_terminal_and_stdout_holds_the_answer(
    ollama_env: FakeOllama, tmp_path: Path, flags: list[str], pieces: list[str], answer: str
) -> None:
    """With -x, --schema or --no-stream the terminal stayed blank for as long as the
    model thought: the reasoning went nowhere, and no spinner stood in for it."""
    ollama_env.queue(Reply(thinking=["weigh ", "it up"], pieces=pieces))
    out = tmp_path / "out.txt"
    code, terminal = run_with_a_terminal_for_stderr(["ask", *flags, "2+2?"], out)
    assert code == 0, terminal
    assert "weigh it up" in terminal and "thought for" in terminal
    assert out.read_text() == answer
