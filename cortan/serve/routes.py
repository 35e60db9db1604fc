"""The gateway's routes: which endpoint answers which path, and the answer for the rest.

Layer: serve. Kept apart from :mod:`cortan.serve.gateway` so that the endpoints may
name the :class:`~cortan.serve.gateway.Gateway` they serve without the gateway
importing them back: the composition root hands :func:`make_routes` to the gateway.

A path the gateway does not serve (``/v1/embeddings``, ``/api/ps``) or a method a
path does not take is one sentence in the API's own error shape, like every other
refusal: Starlette's plain-text ``Not Found`` reached the OpenAI SDK as a message
of two words and the Ollama SDK as an error naming nothing, and a client could not
tell a missing endpoint from a missing model.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.routing import Route

from cortan.serve.replies import RequestError, send_error

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.routing import BaseRoute, Router

    from cortan.serve.gateway import Gateway
    from cortan.serve.replies import Receive, Scope, Send


class ApiRoute(Route):
    """A route whose wrong method is refused in the API's error shape (405, ``Allow``)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.methods and scope["method"] not in self.methods:
            allowed = ", ".join(sorted(self.methods))
            refused = RequestError(
                405, "method_not_allowed", f"{self.path} takes {allowed}, not {scope['method']}",
                {"allow": allowed},
            )  # fmt: skip
            await send_error(send, scope, refused)
            return
        await super().handle(scope, receive, send)


class NotServed:
    """The answer for a path no route serves: 404 and the paths that are served."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        # Paths as a person reads them: ``/v1/models/{model}``, without the converter.
        paths = [re.sub(r":\w+}", "}", route.path) for route in routes if isinstance(route, Route)]
        self.served = ", ".join(path for path in paths if path != "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # a WebSocket elsewhere than /ws: closed, as Starlette does
            await send({"type": "websocket.close", "code": 1000})
            return
        path = str(scope.get("path", ""))[:100]
        message = f"cortan serve does not serve {path}: it serves {self.served} and /ws"
        await send_error(send, scope, RequestError(404, "not_served", message))


def make_routes(gateway: Gateway) -> Router:
    """Every endpoint of the gateway, each bound to ``gateway``."""
    from starlette.routing import Router, WebSocketRoute

    from cortan.serve import ollama, openai, websocket
    from cortan.serve.health import get_health, get_metrics

    routes: list[BaseRoute] = [
        ApiRoute("/v1/chat/completions", openai.endpoint(gateway), methods=["POST"]),
        ApiRoute("/v1/models", openai.models_endpoint(gateway), methods=["GET"]),
        ApiRoute("/v1/models/{model:path}", openai.models_endpoint(gateway), methods=["GET"]),
        ApiRoute("/api/chat", ollama.endpoint(gateway), methods=["POST"]),
        ApiRoute("/api/generate", ollama.generate_endpoint(gateway), methods=["POST"]),
        ApiRoute("/api/tags", ollama.tags_endpoint(gateway), methods=["GET"]),
        ApiRoute("/api/show", ollama.show_endpoint(gateway), methods=["POST"]),
        ApiRoute("/api/version", ollama.version_endpoint, methods=["GET", "HEAD"]),
        ApiRoute("/", ollama.root_endpoint, methods=["GET", "HEAD"]),
        ApiRoute("/health", get_health(gateway), methods=["GET", "HEAD"]),
        ApiRoute("/metrics", get_metrics(gateway), methods=["GET"]),
    ]
    # No redirect from a path with a slash added or taken off: Starlette's 307 had an
    # empty body and a Location built from the client's own Host header.
    return Router([*routes, WebSocketRoute("/ws", websocket.endpoint(gateway))],
                  default=NotServed(routes), redirect_slashes=False)  # fmt: skip
