"""The gateway's stderr hand-off (cortan/serve/stderr.py) on a real pipe.

What a full pipe cannot take is dropped, not waited for, and said once the pipe
moves; a pipe whose reader has gone ends the writing, not the caller.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.serve.stderr import MAX_PENDING, StderrHandOff


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def read_all(fd: int, until: bytes, timeout: float = 10) -> bytes:
    os.set_blocking(fd, False)
    got = b""
    deadline = time.monotonic() + timeout
    while until not in got:
        assert time.monotonic() < deadline, got[-200:]
        try:
            got += os.read(fd, 1 << 16)
        except BlockingIOError:
            time.sleep(0.01)
    return got


def test_a_full_pipe_drops_lines_says_how_many_and_never_blocks(
    pipe: tuple[int, int],
) -> None:
    read, write = pipe
    stream = StderrHandOff(os.fdopen(write, "w", closefd=False))
    line = "x" * 99 + "\n"
    start = time.monotonic()
    for _ in range(2 * MAX_PENDING // len(line)):  # twice what may wait, none read
        stream.write(line)
    assert time.monotonic() - start < 5  # the writer never waited for the pipe
    assert not stream.wait(0.2)  # stuck: nobody reads
    got = read_all(read, b"x" * 99)  # the pipe moves: what was queued comes out
    stream.write("the end\n")
    got += read_all(read, b"the end\n")
    text = got.decode()
    assert "log lines dropped: stderr was not being read" in text
    # Said once per time the pipe moved after drops: twice when the thread first ran
    # only after the queue was full (a busy machine), and wrote until the pipe filled.
    dropped = sum(int(n) for n in re.findall(r"cortan serve: (\d+) log lines? dropped", text))
    kept = text.count(line)
    assert dropped + kept == 2 * MAX_PENDING // len(line)  # every line kept or counted
    assert kept * len(line) <= MAX_PENDING + 200_000  # what waited, and what the pipe held
    assert stream.wait(5)


def test_a_reader_that_has_gone_ends_the_writing_not_the_writer(
    pipe: tuple[int, int],
) -> None:
    read, write = pipe
    stream = StderrHandOff(os.fdopen(write, "w", closefd=False))
    os.close(read)
    for _ in range(1000):
        assert stream.write("line\n") == 5
    assert stream.wait(5)  # EPIPE: dropped, and nothing waits any more


FULL_DISK = """
import os, resource, signal, sys
from cortan.serve.stderr import StderrHandOff
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, as a full disk's ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
path = sys.argv[1]
stream = StderrHandOff(os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND), "w"))
for _ in range(100):
    stream.write("x" * 99 + "\\n")
assert stream.wait(5)
os.truncate(path, 0)  # room again
stream.write("after\\n")
assert stream.wait(5)
"""


def test_a_full_disk_drops_lines_and_the_log_goes_on_once_there_is_room(
    tmp_path: Path,
) -> None:
    """The first line the file refused (ENOSPC, here EFBIG) ended the writing for good,
    as EPIPE does, silently: the log stayed empty after the disk had room again."""
    log = tmp_path / "stderr.log"
    log.touch()
    subprocess.run([sys.executable, "-c", FULL_DISK, str(log)], check=True, timeout=30)
    text = log.read_text()
    assert text.endswith("after\n")
    assert "log lines dropped: stderr could not be written (File too large)" in text
