"""The collector during start-up (cortan.core.startup): paused, then resumed with start-up frozen.

Each run goes through the real entry point in a fresh interpreter, probed as it
exits (``tests.conftest.probed_command``) for the collector's state: whether it
collects automatically, how many objects are frozen, and how many passes each
generation has had.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Any

import pexpect
import pytest

from cortan.core.startup import resume_collector
from tests.conftest import probed_command, run_probed
from tests.servers import FakeOllama, FakeOpenAI

#: The collector as the process leaves: automatic or not, objects frozen, passes per generation.
COLLECTOR = (
    '{"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),'
    ' "passes": [s["collections"] for s in gc.get_stats()]}'
)


def collector_at_exit(tmp_path: Path, *args: str) -> dict[str, Any]:
    state, done = run_probed(tmp_path / "gc.json", COLLECTOR, *args)
    assert done.returncode == 0, done.stderr
    assert isinstance(state, dict)
    return state


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_ask_resumes_the_collector_with_start_up_frozen(
    kind: str, ollama_env: FakeOllama, openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    model = "ollama:llama3.2:latest" if kind == "ollama" else "openai:gpt-4o-mini"
    state = collector_at_exit(tmp_path, "ask", "-m", model, "hi")
    assert state["enabled"]
    # The SDK's objects are frozen: tens of thousands of them (80k-130k measured).
    assert state["frozen"] > 10_000
    # No full pass walked them: without the pause, an OpenAI ask had one, 18 middle ones.
    assert state["passes"][2] == 0


def test_a_command_without_a_provider_never_collects_its_start_up(tmp_path: Path) -> None:
    state = collector_at_exit(tmp_path, "logs")
    assert not state["enabled"]
    assert state["frozen"] == 0


def test_importing_cortan_leaves_the_collector_alone() -> None:
    """Only the entry point pauses: a library user's (or pytest's) collector is theirs."""
    frozen = gc.get_freeze_count()
    resume_collector()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


@pytest.mark.e2e
def test_the_shell_resumes_once_its_models_are_loaded(
    ollama_env: FakeOllama, tmp_path: Path
) -> None:
    out = tmp_path / "gc.json"
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color"}
    command = probed_command(out, COLLECTOR)
    child = pexpect.spawn(command[0], command[1:], env=env, dimensions=(30, 100), timeout=20)
    try:
        child.expect("›".encode())
        child.send("/models\r")  # waits for the background load, then lists it
        child.expect(b"llama3.2")
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    state = json.loads(out.read_text())
    assert state["enabled"]
    assert state["frozen"] > 10_000
