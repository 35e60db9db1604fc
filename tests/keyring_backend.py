"""Keyring backends for tests, plugged in through keyring's own seams.

No test may touch a real OS keyring (it may prompt, hang on D-Bus, or hold real
keys). ``MemoryKeyring`` is for in-process tests (``keyring.set_keyring``);
``FileKeyring`` keeps its entries in the JSON file named by ``TEST_KEYRING_FILE`` so
that cortan subprocesses share them: run them with
``PYTHON_KEYRING_BACKEND=tests.keyring_backend.FileKeyring`` and the repository
root on ``PYTHONPATH``. The file stands in for the OS keyring, so it is the one
place a test key may be written; leak checks leave its folder out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

BACKEND = "tests.keyring_backend.FileKeyring"
FILE_VARIABLE = "TEST_KEYRING_FILE"


class MemoryKeyring(KeyringBackend):
    """Entries in a dict, gone with the process."""

    priority = 0.1  # a plain number, as keyring's docs show

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring leaves it untyped
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("no such entry")


class FileKeyring(KeyringBackend):
    """Entries in a JSON file, shared by every process that names the same file."""

    priority = 0.1

    @property
    def path(self) -> Path:
        return Path(os.environ[FILE_VARIABLE])

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _save(self, entries: dict[str, str]) -> None:
        self.path.write_text(json.dumps(entries))

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._save({**self._load(), f"{service}/{username}": password})

    def delete_password(self, service: str, username: str) -> None:
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("no such entry")
        self._save(entries)
