"""The retry policy: which failures are worth another try, and how long to wait first.

Layer: engine. Pure arithmetic over the ``[retry]`` settings, so the model manager's
loop stays short and the waits can be tested without sleeping.

A failure is tried again only when it happened before the first piece of the answer
was shown (the manager never asks, so an answer is never stitched from two
attempts) and its error says it is ``retryable``: connection errors, timeouts,
5xx and 429. Waits grow exponentially with *full jitter* (a uniform draw between
zero and the exponential cap), which spreads out clients that failed together. A
``retry-after`` from the server is honoured as given; if it would end past the
deadline there is no retry at all, since waiting less would only earn another 429.
No retry starts later than ``deadline`` seconds after the request began. The pause
a 429 puts on the host's other requests is the server's wait: while it is longer than
``deadline``, those requests fail at once (answering.py ``_check_pause``) rather than
wait it out; a wait no server means (past a day, not finite) was never taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from cortan.core.errors import ProviderError, RateLimitedError

if TYPE_CHECKING:
    from cortan.config.settings import Retry


class RetryPolicy(NamedTuple):
    """``attempts`` counts every try, the first included (1 means never retry)."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    deadline: float = 60.0

    @classmethod
    def from_settings(cls, retry: Retry) -> RetryPolicy:
        return cls(retry.attempts, retry.base_delay, retry.max_delay, retry.deadline)

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**(attempt - 1))]."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 30))
        return cap * random()

    def get_delay(
        self,
        error: ProviderError,
        attempt: int,
        elapsed: float,
        random: Callable[[], float],
    ) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None when there is no next try.

        ``attempt`` is the number of the try that just failed, ``elapsed`` the seconds
        since the request began.
        """
        if not error.retryable or attempt >= self.attempts:
            return None
        remaining = self.deadline - elapsed
        if remaining <= 0:
            return None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return error.retry_after if error.retry_after <= remaining else None
        return min(self.backoff(attempt, random), remaining)

    def get_pause(self, error: RateLimitedError, delay: float | None) -> float:
        """How long a 429 pauses every request to its host: the server's wait (else this
        try's). Past ``deadline`` nobody waits it out: the requests it holds fail at once,
        each saying how long is left, and are not sent into the pause."""
        return error.retry_after or delay or 0.0
