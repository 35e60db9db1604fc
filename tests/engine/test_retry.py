"""The retry policy: what is tried again, how long to wait, and when to stop."""

from __future__ import annotations

import pytest

from cortan.core.errors import (
    AuthError,
    BadRequestError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    UnreachableError,
)
from cortan.engine.retry import RetryPolicy

POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=3.0, deadline=60.0)


def top() -> float:
    return 0.999999


def bottom() -> float:
    return 0.0


@pytest.mark.parametrize(
    "error",
    [UnreachableError("x"), ProviderTimeoutError("x"), ServerError("x"), RateLimitedError("x")],
)
def test_transient_failures_are_retried(error: ProviderError) -> None:
    assert POLICY.get_delay(error, 1, 0.0, top) is not None


@pytest.mark.parametrize(
    "error", [AuthError("x"), ModelNotFoundError("x"), BadRequestError("x"), ProviderError("x")]
)
def test_other_failures_are_not(error: ProviderError) -> None:
    assert POLICY.get_delay(error, 1, 0.0, top) is None


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    caps = [POLICY.get_delay(ServerError("x"), n, 0.0, top) for n in (1, 2, 3)]
    assert caps == pytest.approx([0.5, 1.0, 2.0], rel=1e-3)
    assert RetryPolicy(9, 0.5, 3.0, 60.0).backoff(8, top) == pytest.approx(3.0, rel=1e-3)
    assert POLICY.get_delay(ServerError("x"), 3, 0.0, bottom) == 0.0


def test_attempts_count_every_try() -> None:
    assert POLICY.get_delay(ServerError("x"), 3, 0.0, top) is not None
    assert POLICY.get_delay(ServerError("x"), 4, 0.0, top) is None
    assert RetryPolicy(attempts=1).get_delay(ServerError("x"), 1, 0.0, top) is None


def test_retry_after_is_honoured_as_given() -> None:
    assert POLICY.get_delay(RateLimitedError("x", retry_after=7.5), 1, 0.0, top) == 7.5


def test_retry_after_past_the_deadline_means_no_retry() -> None:
    assert POLICY.get_delay(RateLimitedError("x", retry_after=30), 1, 40.0, top) is None


def test_backoff_is_cut_at_the_deadline_and_nothing_starts_after_it() -> None:
    assert POLICY.get_delay(ServerError("x"), 3, 59.5, top) == pytest.approx(0.5)
    assert POLICY.get_delay(ServerError("x"), 1, 60.0, top) is None
