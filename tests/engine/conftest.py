"""Fixtures for the engine tests that build a model manager (tests/engine/harness.py)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from cortan.config.settings import Settings
from tests.engine.harness import Harness


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make_harness(**values: Any) -> Harness:
        harness = Harness(Settings(**values))
        made.append(harness)
        return harness

    yield make_harness
    for harness in made:
        await harness.manager.aclose()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A port that is bound (so nobody else gets it) but never listens: refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
