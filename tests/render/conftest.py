"""Fixtures of the render tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.render.tty import Tty


@pytest.fixture
def tty() -> Iterator[Tty]:
    """A 60x20 pseudo-terminal."""
    terminal = Tty()
    yield terminal
    terminal.close()
