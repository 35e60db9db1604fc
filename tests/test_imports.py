"""The import budget (issue 7): what loading cortan and running one command may import.

As click's own ``tests/test_imports.py`` does, each check runs a fresh interpreter
and reads ``sys.modules``. A command runs through the real entry point, probed as
it exits (``tests.conftest.probed_command``) for the modules loaded by then.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cortan.cli.main import COMMANDS, commands_needed
from tests.conftest import run_probed
from tests.servers import FakeOllama, FakeOpenAI

#: Heavy libraries that `import cortan`, the CLI module and `cortan --help` must not load.
HEAVY = (
    "openai",
    "ollama",
    "prompt_toolkit",
    "pydantic_settings",
    "keyring",
    "rich.markdown",
    "jsonschema",  # schemas are checked only when one is used (engine/validation.py)
    "regex",
)

LOADED_AFTER = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
json.dump(sorted(sys.modules), sys.stdout)
"""


def loaded_by(*modules: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return set(json.loads(done.stdout))


def loaded_running(tmp_path: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules ``cortan ARGS`` had loaded when it exited, and the run."""
    modules, done = run_probed(tmp_path / "modules.json", "sorted(sys.modules)", *args)
    assert isinstance(modules, list)
    return set(modules), done


def heavy_in(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules for name in names if m == name or m.startswith(name + "."))


@pytest.mark.parametrize("module", ["cortan", "cortan.cli", "cortan.cli.main"])
def test_import_loads_no_heavy_library(module: str) -> None:
    assert heavy_in(loaded_by(module)) == []


def test_import_cortan_loads_neither_typer_nor_rich() -> None:
    # `cortan --version` is answered from here: it must cost about a bare interpreter.
    assert heavy_in(loaded_by("cortan", "cortan.cli"), ("typer", "rich", "pydantic")) == []


def test_help_loads_no_heavy_library(tmp_path: Path) -> None:
    modules, done = loaded_running(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert heavy_in(modules, (*HEAVY, "rich", "asyncio")) == []


def test_help_lists_every_command(tmp_path: Path) -> None:
    # Commands are registered only when needed; help needs them all.
    for args in (["--help"], ["--debug", "-h"]):
        _, done = loaded_running(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        listed = done.stdout.split("Commands:")[1].split()
        assert set(COMMANDS) <= set(listed), done.stdout


def test_a_mistyped_command_is_named_with_the_nearest(tmp_path: Path) -> None:
    _, done = loaded_running(tmp_path, "asj", "hi")
    assert done.returncode == 2
    assert "cortan: error: no such command 'asj'. Did you mean 'ask'?" in done.stderr


def test_a_command_imports_no_other_command(tmp_path: Path, ollama_env: FakeOllama) -> None:
    modules, done = loaded_running(tmp_path, "--no-color", "ask", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, world!\n"
    others = {module for name, (module, _, _) in COMMANDS.items() if name != "ask"}
    assert others & modules == set()


@pytest.mark.parametrize(
    ("argv", "needed"),
    [
        ([], []),
        (["--debug", "--no-color"], []),
        (["ask", "--help"], ["ask"]),
        (["--debug", "sessions", "list"], ["sessions"]),
        (["logs", "-q", "chat"], ["logs"]),
        (["--help", "ask"], list(COMMANDS)),
        (["-h"], list(COMMANDS)),
        (["nosuch"], list(COMMANDS)),
        (["--", "ask"], list(COMMANDS)),
    ],
)
def test_commands_needed_for_a_command_line(argv: list[str], needed: list[str]) -> None:
    assert list(commands_needed(argv)) == needed


def test_version_loads_only_cortan(tmp_path: Path) -> None:
    modules, done = loaded_running(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert heavy_in(modules, ("typer", "rich", "pydantic", "asyncio")) == []


def test_ask_ollama_imports_no_sdk(tmp_path: Path, ollama_env: FakeOllama) -> None:
    # Ollama's provider speaks its API on httpx: the SDK's import cost ~90 ms before
    # the first byte (its pydantic models, and a module-level client with an SSL context).
    modules, done = loaded_running(tmp_path, "ask", "-m", "ollama:llama3.2:latest", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, world!\n"
    assert "cortan.providers.ollama" in modules
    assert heavy_in(modules, ("ollama", "openai", "httpx2", "prompt_toolkit", "keyring")) == []


def test_ask_openai_imports_no_sdk(tmp_path: Path, openai_env: FakeOpenAI) -> None:
    # The OpenAI provider speaks the chat completions wire on httpx2: `import openai`
    # cost ~300 ms before the first byte (its typed models and its client's machinery).
    modules, done = loaded_running(tmp_path, "ask", "-m", "openai:gpt-4o-mini", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, world!\n"
    assert "cortan.providers.openai" in modules
    assert heavy_in(modules, ("openai", "ollama", "prompt_toolkit", "keyring")) == []
    assert "httpx" not in modules  # Ollama's line of httpx: this provider's is httpx2


def test_piped_answer_loads_no_markdown_renderer(tmp_path: Path, ollama_env: FakeOllama) -> None:
    # stdout is a pipe here: plain text, so rich's markdown stack has no business loading.
    modules, done = loaded_running(tmp_path, "ask", "hi")
    assert done.returncode == 0, done.stderr
    assert heavy_in(modules, ("rich.markdown", "markdown_it", "pygments")) == []


def test_batch_imports_no_view_and_no_other_sdk(tmp_path: Path, ollama_env: FakeOllama) -> None:
    # Piped output and a log for stderr: no markdown, no progress bar, no other SDK.
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n")
    modules, done = loaded_running(tmp_path, "batch", str(source))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    assert heavy_in(modules, ("openai", "prompt_toolkit", "rich", "keyring")) == []
    others = {module for name, (module, _, _) in COMMANDS.items() if name != "batch"}
    assert others & modules == set()


def test_httpx_never_loads_its_command_line() -> None:
    # click comes with uvicorn (cortan serve): httpx would import its CLI, and with it
    # click, pygments and rich's console, whenever it is imported (cortan/__init__.py).
    import importlib.util

    assert importlib.util.find_spec("click") is not None, "click is installed beside cortan"
    assert heavy_in(loaded_by("cortan", "httpx"), ("click", "pygments")) == []
    assert "click" in loaded_by("httpx")  # the cost being avoided, where cortan is not loaded
