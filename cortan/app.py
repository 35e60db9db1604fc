"""The composition root: the one place that wires concrete parts together.

Everything else receives what it needs as arguments. ``App.build`` makes the bus
and the engine (validator, context manager, model manager) from settings; the
front end then attaches the subscribers it wants (an answer view, diagnostics,
later the store) and publishes requests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cortan.engine.bus import EventBus
from cortan.engine.context import ContextManager
from cortan.engine.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ChatRequested,
    ChatStarted,
    Notice,
    TokenDelta,
)
from cortan.engine.manager import ModelManager
from cortan.engine.validator import InputValidator

if TYPE_CHECKING:
    from cortan.config.settings import Settings
    from cortan.render.diagnostics import Diagnostics
    from cortan.render.views import AnswerView

ENDINGS: tuple[type[ChatEnded], ...] = (ChatFinished, ChatFailed, ChatCancelled)


@dataclass
class App:
    settings: Settings
    bus: EventBus
    validator: InputValidator
    context: ContextManager
    manager: ModelManager
    endings: dict[int, ChatEnded] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def build(cls, settings: Settings) -> App:
        bus = EventBus()
        app = cls(
            settings,
            bus,
            InputValidator(bus, max_bytes=settings.max_input_bytes),
            ContextManager(
                bus, system=settings.system, instruction_position=settings.instruction_position
            ),
            ModelManager(bus, settings),
        )
        for ending in ENDINGS:
            bus.subscribe(ending, app._record, priority=100)
        return app

    def _record(self, event: ChatEnded) -> None:
        self.endings[event.request_id] = event

    def next_id(self) -> int:
        return next(self._ids)

    def attach_view(self, view: AnswerView) -> None:
        """Show answers through ``view``."""
        self.bus.subscribe(ChatStarted, view.on_started)
        self.bus.subscribe(TokenDelta, view.on_delta)
        for ending in ENDINGS:
            self.bus.subscribe(ending, view.on_ended)

    def attach_diagnostics(self, diagnostics: Diagnostics) -> None:
        """Errors and notices to stderr."""
        self.bus.subscribe(ChatFailed, lambda e: diagnostics.error(e.message), priority=10)
        self.bus.subscribe(Notice, lambda e: diagnostics.notice(e.text))

    async def ask(self, request: ChatRequested) -> ChatEnded:
        """Publish one request and return how it ended."""
        await self.bus.publish(request)
        return self.endings.pop(request.request_id)

    async def aclose(self) -> None:
        await self.manager.aclose()
