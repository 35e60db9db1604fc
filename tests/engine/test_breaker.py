"""The circuit breaker, on a clock the test moves by hand."""

from __future__ import annotations

import pytest

from cortan.engine.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # a fresh read each time (mypy would narrow the property)


def make(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failures=3, cooldown=30.0, clock=clock)


def test_opens_after_n_consecutive_failures() -> None:
    breaker = make(Clock())
    for _ in range(2):
        breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.acquire()


def test_a_success_resets_the_count() -> None:
    breaker = make(Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED


def test_half_open_after_cool_down_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 29.9
    assert state(breaker) is BreakerState.OPEN
    assert breaker.reopens_in == pytest.approx(0.1)
    clock.now += 0.1
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.acquire()
    assert not breaker.acquire()  # one trial at a time
    assert not breaker.is_available()


def test_trial_success_closes() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.acquire()
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.failures == 0


def test_trial_failure_reopens_for_a_full_cool_down() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.acquire()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.reopens_in == 30


def test_cancelled_trial_frees_the_slot() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.acquire()
    breaker.release()
    assert breaker.acquire()


def test_force_takes_an_open_host() -> None:
    breaker = make(Clock())
    for _ in range(3):
        breaker.record_failure()
    assert breaker.acquire(force=True)
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
