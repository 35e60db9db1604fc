"""The circuit breaker: one per host, so a host that keeps failing is left alone for a while.

Layer: engine. States, as in Nygard's *Release It!*:

    closed ──N failures in a row──► open ──cool-down passes──► half-open
      ▲                              ▲                            │
      └──────── trial succeeds ──────┼──────── trial fails ───────┘

While open, requests skip the host (another host, or the next model in the
fallback chain, takes them). After the cool-down one request is let through as a
trial; its outcome closes or reopens the circuit. Only failures that say the host
is unwell count (unreachable, timeouts, 5xx, 429: see ``hosts.HOST_TROUBLE``); an
unknown model or a refused key means the host answered, which counts as success.

Breakers live in the model manager, so they last as long as the process: across
the prompts of one REPL session, not across separate ``cortan ask`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Counts consecutive failures of one host; ``clock`` is monotonic seconds."""

    def __init__(self, *, failures: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def reopens_in(self) -> float:
        """Seconds until an open circuit lets a trial through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def is_available(self) -> bool:
        """Whether a request may use the host now (without claiming the trial)."""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._trial)

    def acquire(self, *, force: bool = False) -> bool:
        """Claim the host for one attempt; a half-open circuit gives out one trial at a time.

        ``force`` takes the host even while open: the caller has nothing else to try.
        """
        if not (force or self.is_available()):
            return False
        if self.state is not BreakerState.CLOSED:
            self._trial = True
        return True

    def record_success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._trial = False

    def record_failure(self) -> None:
        self.failures += 1
        if self._trial or self.failures >= self.threshold:
            self._opened_at = self._clock()
        self._trial = False

    def release(self) -> None:
        """An attempt ended with no verdict on the host (cancelled): free the trial."""
        self._trial = False
