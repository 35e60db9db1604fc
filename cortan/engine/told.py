"""Which of the engine's "say it once" notices are said again, and to whom.

Layer: engine. Some notices are about the process rather than one request: the
response cache cannot be read, an MCP server did not start, a model cannot think.
In a terminal they are said once: the user has read it, and saying it again before
each answer of a chat would bury the answers. A gateway serves many programs, each
reading only its own answers, so the request is the only place a client learns what
applied to it: a gateway client's request (``ChatRequest.client`` set) is told every
time. Every such notice in the engine asks :class:`Told`, so the rule is one rule.
"""

from __future__ import annotations

from collections.abc import Hashable

from cortan.core.recent import Recent


class Told:
    """The topics already said in this process (a cache failure, a server down)."""

    __slots__ = ("_topics",)

    def __init__(self) -> None:
        self._topics: Recent[Hashable, None] = Recent()  # a topic may name a model

    def should_tell(self, topic: Hashable, client: str | None) -> bool:
        """Whether to say ``topic`` now: the first time in this process, and every
        time to a program the gateway serves (``client``: the request's)."""
        first = topic not in self._topics
        self._topics[topic] = None
        return first or client is not None
