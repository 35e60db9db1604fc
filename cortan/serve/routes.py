"""The gateway's routes: which endpoint answers which path.

Layer: serve. Kept apart from :mod:`cortan.serve.gateway` so that the endpoints may
name the :class:`~cortan.serve.gateway.Gateway` they serve without the gateway
importing them back: the composition root hands :func:`make_routes` to the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import Router

    from cortan.serve.gateway import Gateway


def make_routes(gateway: Gateway) -> Router:
    """Every endpoint of the gateway, each bound to ``gateway``."""
    from starlette.routing import Route, Router, WebSocketRoute

    from cortan.serve import ollama, openai, websocket
    from cortan.serve.health import get_health, get_metrics

    return Router(
        [
            Route("/v1/chat/completions", openai.endpoint(gateway), methods=["POST"]),
            Route("/v1/models", openai.models_endpoint(gateway), methods=["GET"]),
            Route("/api/chat", ollama.endpoint(gateway), methods=["POST"]),
            Route("/api/generate", ollama.generate_endpoint(gateway), methods=["POST"]),
            Route("/api/tags", ollama.tags_endpoint(gateway), methods=["GET"]),
            Route("/api/version", ollama.version_endpoint, methods=["GET", "HEAD"]),
            Route("/", ollama.root_endpoint, methods=["GET", "HEAD"]),
            WebSocketRoute("/ws", websocket.endpoint(gateway)),
            Route("/health", get_health(gateway), methods=["GET", "HEAD"]),
            Route("/metrics", get_metrics(gateway), methods=["GET"]),
        ]
    )
