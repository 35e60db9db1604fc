"""API key lookup: the provider's variable, then its command, then the keyring.

The keyring is keyring's own: an in-memory backend installed with
``keyring.set_keyring`` (and put back afterwards), or the always-failing backend
the isolation fixture selects, which stands for a headless box with no keyring.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator

import keyring
import pytest

from cortan.config.keys import (
    delete_keyring_key,
    get_api_key,
    locate_api_key,
    set_keyring_key,
)
from cortan.config.settings import ProviderConfig
from cortan.core.errors import ConfigError, KeyringError
from tests.keyring_backend import MemoryKeyring

WORK = ProviderConfig(kind="openai", base_url="http://127.0.0.1:1/v1", api_key_env="WORK_KEY")


def command(printing: str, code: int = 0) -> str:
    script = f"print({printing!r}); raise SystemExit({code})"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_variable_then_command_then_keyring(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_keyring_key("work", "sk-from-keyring")
    assert get_api_key("work", WORK) == "sk-from-keyring"
    with_command = WORK.model_copy(update={"api_key_cmd": command("sk-from-command")})
    assert get_api_key("work", with_command) == "sk-from-command"
    monkeypatch.setenv("WORK_KEY", " sk-from-env\n")
    assert get_api_key("work", with_command) == "sk-from-env"


def test_location_names_the_place_never_the_key(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert locate_api_key("work", WORK).source is None
    set_keyring_key("work", "sk-secret")
    found = locate_api_key("work", WORK)
    assert (found.source, found.detail) == ("keyring", "cortan/work")
    monkeypatch.setenv("WORK_KEY", "sk-secret")
    assert locate_api_key("work", WORK).detail == "WORK_KEY"
    assert delete_keyring_key("work")
    assert not delete_keyring_key("work")


def test_a_failing_command_is_one_sentence_without_its_output() -> None:
    config = WORK.model_copy(update={"api_key_cmd": command("sk-half-printed", code=3)})
    with pytest.raises(ConfigError) as caught:
        get_api_key("work", config)
    assert "exit 3" in str(caught.value)
    assert "sk-half-printed" not in str(caught.value)


def test_no_keyring_names_the_variable_to_use() -> None:
    with pytest.raises(KeyringError) as caught:
        set_keyring_key("work", "sk-x", WORK)
    assert str(caught.value) == (
        "no usable OS keyring was found: set WORK_KEY in the environment instead"
    )
    assert get_api_key("work", WORK) is None  # a lookup just finds nothing


def test_no_keyring_without_a_variable_says_how_to_name_one() -> None:
    config = ProviderConfig(kind="openai", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(
        KeyringError, match=r'api_key_env = "LAB_GPU_API_KEY" to \[providers.lab-gpu\]'
    ):
        set_keyring_key("lab-gpu", "sk-x", config)
