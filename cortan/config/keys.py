"""API keys: from the provider's variable, its key command, or the OS keyring.

Keys are never written to a file by cortan. Lookup order: the variable the
provider names (``api_key_env``), then its ``api_key_cmd`` (for password
managers), then the keyring entry ``cortan/<provider>``. keyring is imported only
when a lookup reaches it, because it is slow to import and may probe D-Bus.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import TYPE_CHECKING

from cortan.errors import ConfigError, KeyringError

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig

SERVICE = "cortan"


def get_api_key(name: str, config: ProviderConfig, *, use_keyring: bool = True) -> str | None:
    """The key for provider ``name``, or None when it has none anywhere."""
    if config.api_key_env and os.environ.get(config.api_key_env):
        return os.environ[config.api_key_env].strip()
    if config.api_key_cmd:
        return run_key_command(name, config.api_key_cmd)
    if use_keyring:
        try:
            return get_keyring_key(name)
        except KeyringError:
            return None
    return None


def run_key_command(name: str, command: str) -> str:
    """Run ``api_key_cmd`` and take the first line it prints as the key."""
    try:
        done = subprocess.run(  # noqa: S603 - the user's own configured command
            shlex.split(command), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"api_key_cmd for provider {name!r} could not run: {exc}") from None
    key = done.stdout.strip().splitlines()[0].strip() if done.stdout.strip() else ""
    if done.returncode != 0 or not key:
        raise ConfigError(
            f"api_key_cmd for provider {name!r} failed (exit {done.returncode}) or printed no key"
        )
    return key


def get_keyring_key(name: str) -> str | None:
    """Read the keyring entry; raises KeyringError when no backend works."""
    keyring = _import_keyring()
    try:
        return keyring.get_password(SERVICE, name)  # type: ignore[no-any-return]
    except Exception as exc:
        raise KeyringError(_no_keyring_sentence(name, exc)) from None


def set_keyring_key(name: str, key: str) -> None:
    keyring = _import_keyring()
    try:
        keyring.set_password(SERVICE, name, key)
    except Exception as exc:
        raise KeyringError(_no_keyring_sentence(name, exc)) from None


def delete_keyring_key(name: str) -> bool:
    """Remove the entry; False when there was none."""
    keyring = _import_keyring()
    import keyring.errors

    try:
        keyring.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except Exception as exc:
        raise KeyringError(_no_keyring_sentence(name, exc)) from None
    return True


def _import_keyring():  # type: ignore[no-untyped-def]
    import keyring

    return keyring


def _no_keyring_sentence(name: str, exc: BaseException) -> str:
    variable = "OPENAI_API_KEY" if name == "openai" else f"the provider's api_key_env variable"
    return (
        f"no usable OS keyring ({type(exc).__name__}); "
        f"set {variable} in the environment instead"
    )
