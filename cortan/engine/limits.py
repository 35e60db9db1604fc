"""Client-side rate limits: requests and tokens per minute, and pauses a server asks for.

Layer: engine. A :class:`RateLimiter` belongs to a provider's host pool (limits the
hosts share, like an API key's quota) or to one host (a server's own limits), as
``[providers.NAME.rate_limit]`` says, and lives as long as the model manager: every
request of the process, of every front end, draws on the same buckets, so a batch
of a thousand prompts keeps to the limits as one ``cortan ask`` does.

Each limit is a token bucket that may run into debt, so a large request is never
refused: a request goes once the bucket holds what it costs (or, costing more than
the bucket can hold, once the bucket is full), then takes it all (one request; its
estimated prompt tokens, settled against the server's count when it ends), and those
behind it wait until the debt is paid back at the configured rate. Buckets hold at
most one second's share (at least one request), so requests are spread over the
minute instead of spent in a burst at its start.

Reserving is synchronous and returns how long to wait: requests side by side each
take their turn in order without a lock, and the caller sleeps through its own
clock seam (tests pass one that does not wait).

A 429 from the server pauses the limiter until its ``retry-after`` (or the retry
policy's wait): every request of the job waits it out, not only the one that was
refused, which is what slows a batch instead of earning a 429 per request. Every
pool has a limiter for that reason, even one with no limits configured.
"""

from __future__ import annotations

from collections.abc import Callable

SECONDS_PER_MINUTE = 60.0


class TokenBucket:
    """``rate`` units per second, holding at most ``burst``; may run into debt."""

    __slots__ = ("_clock", "_level", "_stamp", "burst", "rate")

    def __init__(self, per_minute: float, *, clock: Callable[[], float], burst: float) -> None:
        self.rate = per_minute / SECONDS_PER_MINUTE
        self.burst = burst
        self._clock = clock
        self._level = burst
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._level

    def reserve(self, cost: float) -> float:
        """Take ``cost`` now; the seconds to wait before using it.

        The wait is until the bucket would hold ``cost`` (at most a full bucket): the
        ones reserved before this one come first, whatever they cost.
        """
        level = self._refill()
        self._level = level - cost
        return max(0.0, min(cost, self.burst) - level) / self.rate

    def charge(self, cost: float) -> None:
        """Take (or, negative, give back) ``cost`` after the fact: a count settled late."""
        self._refill()
        self._level = min(self.burst, self._level - cost)

    def hold(self, seconds: float) -> None:
        """Nothing for ``seconds``: a debt that takes that long to pay back."""
        self._refill()
        self._level = min(self._level, -seconds * self.rate)

    @property
    def level(self) -> float:
        return self._refill()


class RateLimiter:
    """Requests and tokens per minute (either may be None: unlimited), and 429 pauses."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float],
    ) -> None:
        self._clock = clock
        self.requests = (
            None
            if requests_per_minute is None
            else TokenBucket(
                requests_per_minute,
                clock=clock,
                burst=max(1.0, requests_per_minute / SECONDS_PER_MINUTE),
            )
        )
        self.tokens = (
            None
            if tokens_per_minute is None
            else TokenBucket(
                tokens_per_minute, clock=clock, burst=tokens_per_minute / SECONDS_PER_MINUTE
            )
        )
        self._paused_until = 0.0

    @property
    def counts_tokens(self) -> bool:
        """Whether requests must say what they cost in tokens."""
        return self.tokens is not None

    def reserve(self, tokens: int = 0) -> float:
        """One request of about ``tokens`` prompt tokens: the seconds it must wait first."""
        wait = max(0.0, self._paused_until - self._clock())
        if self.requests is not None:
            wait = max(wait, self.requests.reserve(1))
        if self.tokens is not None:
            wait = max(wait, self.tokens.reserve(tokens))
        return wait

    def settle(self, estimated: int, prompt: int | None, completion: int | None) -> None:
        """A request ended: charge its answer's tokens, and correct its prompt's estimate."""
        if self.tokens is None:
            return
        used = (prompt if prompt is not None else estimated) + (completion or 0)
        self.tokens.charge(used - estimated)

    def pause(self, seconds: float) -> None:
        """The server refused for a while (429): every request waits until it has passed.

        With a request limit, the requests that waited go one by one at its rate after
        the pause, not all at once when it ends (which would earn the next 429).
        """
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        if self.requests is not None:
            self.requests.hold(seconds)

    @property
    def paused_for(self) -> float:
        """Seconds until the pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())
