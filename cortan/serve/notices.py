"""What the engine said about a gateway request on its way, for the client that sent it.

Layer: serve. The engine publishes a ``Notice`` when it does something the client
did not ask for: earlier turns left out to fit the window, another model answering
after the first failed, a repair asked of the model, a long wait for a rate limit.
``cortan ask`` prints them on stderr; a gateway client used to learn nothing, and an
editor showed an answer to a conversation it did not know had been cut.

Each chat's notices are kept here (:class:`Notices`, or a relay's own when the answer
is streamed) and leave the gateway three ways: ``X-Cortan-Notice`` response headers
(one per notice, plain ASCII), ``"cortan": {"notices": [...]}`` in the final object or
chunk (:func:`add_notices`), and a line in the access log. A WebSocket already gets
each notice as an event of its own as it happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cortan.core.text import shorten

if TYPE_CHECKING:
    from cortan.core.events import ChatStarted, Notice, ThinkingDelta, TokenDelta

HEADER = b"x-cortan-notice"
MAX_NOTICES = 16  # per request: past it the rest are counted in the last one
MAX_CHARS = 500  # per notice, in headers and bodies alike


class Notices:
    """A request's notices, in order: the watcher of an answer that is not streamed."""

    __slots__ = ("texts",)

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, text: str) -> None:
        if len(self.texts) < MAX_NOTICES:
            self.texts.append(shorten(text, MAX_CHARS))
        else:
            self.texts[-1] = "more notices left out"

    # -- a Watcher (services.py) that keeps only the notices ------------------------------

    def on_started(self, event: ChatStarted) -> None:
        pass

    def on_delta(self, event: TokenDelta) -> None:
        pass

    def on_thinking(self, event: ThinkingDelta) -> None:
        pass

    def on_notice(self, event: Notice) -> None:
        self.add(event.text)


def get_headers(texts: Iterable[str]) -> list[tuple[bytes, bytes]]:
    """One ``X-Cortan-Notice`` header per notice: printable ASCII (a header carries no
    line breaks, and clients read its bytes as Latin-1), the rest escaped."""
    headers = []
    for text in texts:
        printable = "".join(c if c.isprintable() else " " for c in text)
        headers.append((HEADER, printable.encode("ascii", "backslashreplace")))
    return headers


def add_notices(body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """``body`` with ``"cortan": {"notices": [...]}`` when there are any (else as it was,
    so an answer nothing happened to is what the API itself would send)."""
    if texts:
        body["cortan"] = {"notices": list(texts)}
    return body
