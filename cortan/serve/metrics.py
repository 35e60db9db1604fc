"""Prometheus metrics with the official client, on a registry of the gateway's own.

Layer: serve. Counted as requests end (no work per piece of an answer beyond one
counter at the end): requests by API and outcome, errors by kind (and a connection
cut off for not reading, ``write_timeout``, beside its chats' own outcomes), time
to first token and duration as histograms, tokens by provider. Read when scraped, from
the engine and the lanes themselves: queue depth and answers in progress per
provider, open connections, and every host's breaker state (0 closed, 1
half-open, 2 open) and the requests it is answering. A private
``CollectorRegistry`` keeps two gateways in one process (tests) apart and leaves
the process's default registry alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from cortan.core.events import ChatCancelled, ChatEnded, ChatFailed, ChatFinished

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from cortan.engine.hosts import HostState
    from cortan.serve.limits import LaneState

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()
BREAKER_VALUE = {"closed": 0.0, "half-open": 1.0, "open": 2.0}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The gateway's metrics; ``render`` is the body of ``/metrics``."""

    def __init__(
        self,
        lanes: Callable[[], list[LaneState]],
        hosts: Callable[[], list[HostState]],
        connections: Callable[[], int],
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cortan_serve_requests", "Chat requests by API and how they ended.",
            ["api", "outcome"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "cortan_serve_errors", "Failed or refused requests by kind.", ["kind"], registry=r
        )
        self.first_token = Histogram(
            "cortan_serve_time_to_first_token_seconds", "From the request to its first piece.",
            ["provider"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "cortan_serve_request_duration_seconds", "From the request to its ending.",
            ["api"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "cortan_serve_tokens", "Tokens as the providers counted them.",
            ["provider", "kind"], registry=r,
        )  # fmt: skip
        r.register(_Live(lanes, hosts, connections))

    def rejected(self, kind: str) -> None:
        """A request refused before the engine saw it (auth, host, limits, bad input)."""
        self.errors.labels(kind).inc()

    def cut_off(self, kind: str) -> None:
        """A connection the gateway gave up on (``write_timeout``: its client stopped reading)."""
        self.errors.labels(kind).inc()

    def ended(self, api: str, ended: ChatEnded, seconds: float) -> None:
        """One chat's ending: its outcome, its timings, its tokens."""
        self.duration.labels(api).observe(seconds)
        if isinstance(ended, ChatFinished):
            self.requests.labels(api, "finished").inc()
            provider = ended.provider
            if ended.timings.first_token is not None:
                self.first_token.labels(provider).observe(ended.timings.first_token)
            if ended.usage.prompt_tokens:
                self.tokens.labels(provider, "prompt").inc(ended.usage.prompt_tokens)
            if ended.usage.completion_tokens:
                self.tokens.labels(provider, "completion").inc(ended.usage.completion_tokens)
        elif isinstance(ended, ChatFailed):
            self.requests.labels(api, "failed").inc()
            self.errors.labels(ended.kind).inc()
        elif isinstance(ended, ChatCancelled):
            self.requests.labels(api, "cancelled").inc()
            if ended.first_token is not None and ended.provider is not None:
                # An editor cancels most of its requests once the first pieces came:
                # counted on finished ones alone, the histogram missed most first tokens.
                self.first_token.labels(ended.provider).observe(ended.first_token)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Live(Collector):
    """Gauges read at scrape time from the lanes, the hosts and the door."""

    def __init__(
        self,
        lanes: Callable[[], list[LaneState]],
        hosts: Callable[[], list[HostState]],
        connections: Callable[[], int],
    ) -> None:
        self._lanes, self._hosts, self._connections = lanes, hosts, connections

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "cortan_serve_queue_depth", "Requests waiting for a provider's hosts.",
            labels=["provider"],
        )  # fmt: skip
        active = GaugeMetricFamily(
            "cortan_serve_streams", "Answers in progress per provider.", labels=["provider"]
        )
        for lane in self._lanes():
            queued.add_metric([lane.provider], lane.waiting)
            active.add_metric([lane.provider], lane.active)
        breakers = GaugeMetricFamily(
            "cortan_serve_breaker_state", "Each host's circuit: 0 closed, 1 half-open, 2 open.",
            labels=["provider", "host"],
        )  # fmt: skip
        # Requests each host is answering now: behind the lanes, the engine sends a host
        # at most its provider's ``parallel``; the streams above that are waiting for it,
        # which neither the streams nor the queue depth showed.
        in_flight = GaugeMetricFamily(
            "cortan_serve_upstream_in_flight", "Requests each upstream host is answering.",
            labels=["provider", "host"],
        )  # fmt: skip
        for host in self._hosts():
            breakers.add_metric([host.provider, host.url], BREAKER_VALUE.get(host.state, 2.0))
            in_flight.add_metric([host.provider, host.url], host.in_flight)
        yield from (queued, active, breakers, in_flight)
        yield GaugeMetricFamily(
            "cortan_serve_connections", "Requests and sockets open.", value=self._connections()
        )
