"""Client-side rate limits: the buckets' arithmetic, and requests paced through ``Chat.run``.

The buckets run on a clock the test moves; the engine tests use the harness of
test_manager.py (real servers over loopback, time replaced through the manager's
``clock``/``sleep`` seams), so a minute of pacing costs nothing and every wait the
engine chose is in ``h.time.sleeps``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from cortan.config.settings import Settings
from cortan.core.events import ChatFailed, ChatFinished, Notice
from cortan.engine.limits import RateLimiter, TokenBucket
from tests.engine.harness import Harness, providers
from tests.servers import FakeOllama, FakeOpenAI, Reply


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keyed_openai(openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    return openai_server


def limited(server: FakeOllama, **rate: Any) -> dict[str, Any]:
    found = providers([server.url])
    found["ollama"]["rate_limit"] = rate
    return found


# -- the buckets -----------------------------------------------------------------------


def test_a_bucket_spreads_requests_over_the_minute() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock=clock, burst=1)
    # Reserved at once, four requests are spaced one second apart: none is refused.
    assert [bucket.reserve(1) for _ in range(4)] == [0.0, 1.0, 2.0, 3.0]
    clock.now += 10  # long idle: the bucket refills, but only to its burst
    assert [bucket.reserve(1) for _ in range(2)] == [0.0, 1.0]


def test_a_request_larger_than_the_bucket_goes_when_it_is_full_then_owes() -> None:
    clock = Clock()
    bucket = TokenBucket(60_000, clock=clock, burst=1000)  # 1000 tokens a second
    assert bucket.reserve(5000) == 0.0  # never refused for its size
    assert bucket.reserve(100) == pytest.approx(4.1)  # the debt is paid back first
    clock.now += 4.1  # when the second goes, the bucket has just paid for it
    assert bucket.level == pytest.approx(0, abs=1e-6)


def test_settling_charges_the_answer_and_corrects_the_estimate() -> None:
    clock = Clock()
    limiter = RateLimiter(tokens_per_minute=60_000, clock=clock)
    assert limiter.reserve(tokens=100) == 0.0
    limiter.settle(100, prompt=300, completion=700)  # 1000 used, 100 taken up front
    assert limiter.tokens is not None
    assert limiter.tokens.level == pytest.approx(1000 - 1000)


def test_a_pause_holds_every_request_then_spaces_them() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=60, clock=clock)
    limiter.pause(20)
    assert limiter.paused_for == 20
    # After the pause they go one a second, not all at once when it ends.
    waits = [limiter.reserve() for _ in range(3)]
    assert waits == [pytest.approx(21), pytest.approx(22), pytest.approx(23)]
    unlimited = RateLimiter(clock=clock)
    unlimited.pause(5)
    assert unlimited.reserve() == 5 and unlimited.reserve() == 5
    clock.now += 5
    assert unlimited.reserve() == 0


def test_settings_validate_limits() -> None:
    zero: dict[str, Any] = {"kind": "ollama", "rate_limit": {"requests_per_minute": 0}}
    with pytest.raises(ValueError, match="greater than 0"):
        Settings.model_validate({"providers": {"ollama": zero}})
    stranger: dict[str, Any] = {"kind": "ollama", "hosts": ["a:1"], "parallel": {"b:1": 2}}
    with pytest.raises(ValueError, match="not one of its hosts"):
        Settings.model_validate({"providers": {"ollama": stranger}})


# -- through Chat.run ------------------------------------------------------------------


async def test_requests_are_paced_to_the_limit(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    h = make(providers=limited(ollama, requests_per_minute=60))
    for _ in range(3):
        assert isinstance(await h.ask(), ChatFinished)
    assert h.time.sleeps == [1.0, 1.0]
    # A wait of a second or more is said: "waiting 1 s for the rate limit".
    assert any("for the rate limit" in n.text for n in h.of(Notice))


async def test_tokens_per_minute_counts_what_the_answers_cost(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    ollama.default = Reply(prompt_tokens=50, completion_tokens=950)
    h = make(providers=limited(ollama, tokens_per_minute=60_000))  # 1000 tokens a second
    for _ in range(3):
        assert isinstance(await h.ask(), ChatFinished)
    # Each request cost 1000 tokens (told by the server when it ended), the bucket's
    # whole second: the first went on a full bucket, the second on the few tokens of
    # its own prompt, the third paid back the second's answer first.
    assert len(h.time.sleeps) == 2
    assert 1.0 <= sum(h.time.sleeps) < 1.1, h.time.sleeps


async def test_per_host_limits_are_each_hosts_own(
    make: Callable[..., Harness], ollama: FakeOllama
) -> None:
    with FakeOllama() as other:
        found = providers([ollama.url, other.url])
        found["ollama"]["rate_limit"] = {"requests_per_minute": 60, "per": "host"}
        h = make(providers=found)
        await asyncio.gather(h.ask(), h.ask())  # one to each host: neither waits
        assert h.time.sleeps == []
        assert (len(ollama.chat_requests), len(other.chat_requests)) == (1, 1)


async def test_a_429_slows_every_request_not_only_the_refused_one(
    make: Callable[..., Harness], keyed_openai: FakeOpenAI
) -> None:
    keyed_openai.queue(Reply(status=429, headers={"retry-after": "7"}))
    h = make(
        providers=providers([], keyed_openai),
        default_model="openai:gpt-4o-mini",
        retry={"attempts": 1},  # the refused request fails at once...
    )
    first = await h.ask()
    assert isinstance(first, ChatFailed)
    assert first.kind == "rate_limited"
    second = await h.ask()  # ...and the next one waits out the server's retry-after
    assert isinstance(second, ChatFinished)
    assert h.time.sleeps == [7.0]


async def test_a_429_retried_waits_once(
    make: Callable[..., Harness], keyed_openai: FakeOpenAI
) -> None:
    keyed_openai.queue(Reply(status=429, headers={"retry-after": "3"}))
    h = make(providers=providers([], keyed_openai), default_model="openai:gpt-4o-mini")
    assert isinstance(await h.ask(), ChatFinished)
    assert h.time.sleeps == [3.0]  # the retry's wait, not the pause's again


async def test_a_429_asking_for_an_hour_fails_the_next_request_at_once_unsent(
    make: Callable[..., Harness], keyed_openai: FakeOpenAI
) -> None:
    """The pause of every request to the host was the server's whole wait: a REPL, a
    batch or the gateway would sit an hour on the next request. Past the deadline, the
    next one fails at once, unsent, and says so; nobody sleeps."""
    keyed_openai.queue(Reply(status=429, headers={"retry-after": "3600"}))
    h = make(
        providers=providers([], keyed_openai),
        default_model="openai:gpt-4o-mini",
        retry={"attempts": 1, "deadline": 20},
    )
    first = await h.ask()
    assert isinstance(first, ChatFailed)
    assert "it asks to wait 3600 s, past retry.deadline (20 s)" in first.message
    second = await h.ask()
    assert isinstance(second, ChatFailed) and second.kind == "rate_limited"
    assert "past retry.deadline (20 s)" in second.message
    assert h.time.sleeps == [] and len(keyed_openai.chat_requests) == 1


@pytest.mark.parametrize("said", ["99999", "1e12", "inf", "1e400", "nan", "-5", "-inf", "soon"])
async def test_a_retry_after_no_server_means_falls_back_to_the_backoff(
    make: Callable[..., Harness], keyed_openai: FakeOpenAI, said: str
) -> None:
    """Huge or infinite waits gave up at once (and paused the host for ever); nan and
    negative ones retried with no wait at all."""
    keyed_openai.queue(Reply(status=429, headers={"retry-after": said}))
    h = make(providers=providers([], keyed_openai), default_model="openai:gpt-4o-mini")
    assert isinstance(await h.ask(), ChatFinished)
    assert h.time.sleeps == [0.25]  # the first backoff: 0.5 s x jitter 0.5
    assert isinstance(await h.ask(), ChatFinished)
    assert h.time.sleeps == [0.25]  # no pause left behind for the next request
