"""``/health`` (open, for liveness probes) and ``/metrics`` (Prometheus, behind the token).

Layer: serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cortan import __version__
from cortan.serve.metrics import CONTENT_TYPE
from cortan.serve.replies import Receive, Scope, Send, send_bytes, send_json

if TYPE_CHECKING:
    from cortan.serve.gateway import Gateway


class Health:
    """``GET /health``: ok while serving, 503 while stopping (load balancers move on)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.gateway.draining:
            await send_json(send, 503, {"status": "stopping", "version": __version__})
            return
        await send_json(send, 200, {"status": "ok", "version": __version__})


class MetricsPage:
    """``GET /metrics``: the Prometheus text format."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self.gateway.metrics.render(), CONTENT_TYPE)


def get_health(gateway: Gateway) -> Health:
    return Health(gateway)


def get_metrics(gateway: Gateway) -> MetricsPage:
    return MetricsPage(gateway)
