"""A data folder that cannot be written: reading works, answering works (issue 15).

Tests run as root here, and ``chmod`` does not stop root, so the folder is really made
read-only: a read-only bind mount of it onto itself (``mount -o remount,ro,bind``),
which refuses every write with EROFS whoever asks, exactly as a read-only medium or a
read-only container volume does. A full disk is a 256 KiB tmpfs filled up. Both need
the right to mount; elsewhere these tests are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama


def _unmount(folder: Path) -> None:
    """Unmount, lazily if something still holds the folder (never leave a mount behind)."""
    done = subprocess.run(["umount", str(folder)], capture_output=True, check=False, timeout=30)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False, timeout=30)


def _mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, check=False, timeout=30)
    return done.returncode == 0


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    if not _mount("--bind", str(folder), str(folder)):
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        if not _mount("-o", "remount,ro,bind", str(folder)):
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        _unmount(folder)


@pytest.fixture
def stored(cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path) -> Path:
    """A store holding one named conversation; its folder."""
    result = cortan.run("ask", "--no-stdin", "--session", "kept", "first question")
    assert result.code == 0, result.stderr
    return isolated_env / "data"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sessions", "list"], "kept"),
        (["sessions", "show", "kept"], "first question"),
        (["sessions", "export", "kept"], "first question"),
        (["logs"], "first question"),
        (["logs", "-q", "first"], "first question"),
        (["doctor"], "store"),
        (["models"], "llama3.2"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_reading_commands_work_on_a_read_only_folder(
    cortan: type[CortanRunner], stored: Path, args: list[str], expected: str
) -> None:
    with read_only(stored):
        result = cortan.run(*args)
    assert result.code == 0, result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stderr


def test_ask_answers_when_the_folder_is_read_only(cortan: type[CortanRunner], stored: Path) -> None:
    with read_only(stored):
        result = cortan.run("ask", "--no-stdin", "second question")
        again = cortan.run("ask", "--no-stdin", "third question")
    assert (result.code, result.stdout) == (0, "Hello, world!\n"), result.stderr
    assert result.stderr.count("cortan: warning:") == 1
    assert "this exchange is not stored" in result.stderr
    assert again.code == 0


def test_ask_with_a_session_says_the_log_cannot_be_kept(
    cortan: type[CortanRunner], stored: Path
) -> None:
    with read_only(stored):
        result = cortan.run("ask", "--no-stdin", "--session", "kept", "more")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "cannot write the session store" in result.stderr


def test_writing_commands_still_say_why_they_cannot(
    cortan: type[CortanRunner], stored: Path
) -> None:
    with read_only(stored):
        result = cortan.run("sessions", "rename", "kept", "other")
    assert result.code == 1
    assert_one_sentence(result.stderr)


@contextmanager
def tiny_disk(folder: Path, size: str = "256k") -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield
    finally:
        _unmount(folder)


def fill(folder: Path) -> None:
    """Fill the disk holding ``folder`` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "args",
    [["sessions", "list"], ["sessions", "show", "kept"], ["sessions", "export", "kept"], ["logs"]],
    ids=" ".join,
)
def test_reading_commands_work_on_a_full_disk(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path, args: list[str]
) -> None:
    # Before: "the disk holding the session store … is full" (exit 1) for a listing,
    # which needs no room: the store was opened for writing to be read, and SQLite
    # could not make its -shm file. The store was closed cleanly (no -wal, no -shm)
    # while there was room, as after any ask.
    data = isolated_env / "data"
    with tiny_disk(data, "2m"):
        assert cortan.run("ask", "--no-stdin", "--session", "kept", "first question").code == 0
        assert not (data / "cortan.db-shm").exists()
        fill(data)
        result = cortan.run(*args)
    assert result.code == 0, result.stderr
    assert "first question" in result.stdout
    assert result.stderr == ""


def test_a_full_disk_before_the_question_does_not_refuse_the_answer(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    data = isolated_env / "data"
    with tiny_disk(data):
        assert cortan.run("ask", "--no-stdin", "fits").code == 0
        fill(data)
        result = cortan.run("ask", "--no-stdin", "a long question " * 2000)
        listing = cortan.run("sessions", "list")
    assert (result.code, result.stdout) == (0, "Hello, world!\n"), result.stderr
    assert result.stderr.count("cortan: warning:") == 1
    assert "disk I/O error" not in result.stderr
    assert listing.code == 0


def test_the_response_cache_on_a_full_disk_never_refuses_the_answer(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    # Before: `ask --cache` warned the exchange was not stored, then refused the
    # question (exit 1): the cache could not be opened; `cache stats` failed as well.
    data = isolated_env / "data"
    with tiny_disk(data, "2m"):
        assert cortan.run("ask", "--no-stdin", "--cache", "first question").code == 0
        fill(data)
        asked = cortan.run("ask", "--no-stdin", "--cache", "second question")
        stats = cortan.run("cache", "stats", "--json")
    assert (asked.code, asked.stdout) == (0, "Hello, world!\n"), asked.stderr
    assert "the response cache cannot be opened" in asked.stderr
    assert "cortan: error" not in asked.stderr
    assert stats.code == 0, stats.stderr
    assert json.loads(stats.stdout)["entries"] == 1


@pytest.mark.parametrize("args", [["grants", "list"], ["grants", "log"]], ids=" ".join)
def test_grants_are_listed_from_a_store_that_cannot_be_written(
    cortan: type[CortanRunner], stored: Path, args: list[str]
) -> None:
    # Before: "cannot write the session store" (exit 1) for a listing.
    with read_only(stored):
        result = cortan.run(*args)
    assert result.code == 0, result.stderr
    assert "cortan: error" not in result.stderr
