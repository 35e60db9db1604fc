"""REPL lines that are hostile or odd: each ends in one line and the prompt comes back.

Driven through prompt-toolkit's pipe input against the loopback servers, as
tests/shell/test_repl.py drives it (red team, docs/repl.md).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.shell.test_repl import Shell, pipe, stored_shell  # noqa: F401  (fixtures)


@pytest.mark.parametrize("arg", ["²", "¹⁰", "③", "٣x", "-5", "0", "1e3", "10" * 20])
async def test_sessions_with_an_odd_number_is_one_line(
    stored_shell: Shell,  # noqa: F811
    arg: str,
) -> None:
    # "²".isdigit() is True, but int("²") raises: the shell died with an internal error.
    await stored_shell.command(f"/sessions {arg}")
    assert not stored_shell.task.done()
    tail = stored_shell.text.rsplit(f"/sessions {arg}", 1)[-1]
    assert "usage: /sessions [N]" in tail or "larger than the session store can hold" in tail


@pytest.fixture
def short_wait(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORTAN_STDIN_TIMEOUT", "1")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("command", ["/attach", "/file"])
async def test_attaching_a_pipe_nobody_writes_to_is_refused_in_time(
    short_wait: None,
    stored_shell: Shell,  # noqa: F811
    tmp_path: Path,
    command: str,
) -> None:
    # It hung the shell for good: open() of a FIFO waits for a writer, and Ctrl-C only
    # stops answers. The wait is stdin_timeout's (here 1 s).
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    await stored_shell.command(f"{command} {fifo}")
    assert f"cannot attach {fifo}: nothing came from it in 1 s" in stored_shell.text
    assert not stored_shell.task.done()
    assert stored_shell.repl.conversation.pending == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
async def test_a_pipe_that_is_written_to_is_attached(
    stored_shell: Shell,  # noqa: F811
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as end:
            end.write(b"from a pipe\n")

    writer = threading.Thread(target=write)
    writer.start()
    await stored_shell.command(f"/attach {fifo}")
    writer.join(10)
    assert f"attached file {fifo} (12 bytes) to the next message" in stored_shell.text
