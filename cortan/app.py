"""The composition root: the one place that wires concrete parts together.

Everything else receives what it needs as arguments. ``App.build`` makes the bus
and the engine (validator, context manager, model manager) from settings; the
front end then attaches the subscribers it wants (an answer view, diagnostics,
later the store) and publishes requests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cortan.engine.bus import EventBus
from cortan.engine.context import ContextManager
from cortan.engine.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ChatPrepared,
    ChatRequested,
    ChatStarted,
    Notice,
    TokenDelta,
)
from cortan.engine.manager import ModelManager
from cortan.engine.validator import InputValidator, find_remote_provider

if TYPE_CHECKING:
    from pathlib import Path

    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output
    from rich.console import Console

    from cortan.config.settings import Settings
    from cortan.render.diagnostics import Diagnostics
    from cortan.render.views import AnswerView
    from cortan.shell.repl import Repl
    from cortan.store.recorder import Recorder
    from cortan.store.sessions import SessionStore

ENDINGS: tuple[type[ChatEnded], ...] = (ChatFinished, ChatFailed, ChatCancelled)
INTERNAL_ERROR = "the request ended without an answer: internal error (see --debug)"


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
        manager = ModelManager(bus, settings)
        app = cls(
            settings,
            bus,
            InputValidator(
                bus,
                max_bytes=settings.max_input_bytes,
                find_remote=lambda event: find_remote_provider(
                    manager.router, settings.providers, event
                ),
            ),
            ContextManager(
                bus,
                system=settings.system,
                instruction_position=settings.instruction_position,
                settings=settings,
                models=manager,
            ),
            manager,
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
        # Before the model manager (priority 0), which streams the whole answer in its handler.
        self.bus.subscribe(ChatPrepared, view.on_waiting, priority=-5)
        self.bus.subscribe(ChatStarted, view.on_started)
        self.bus.subscribe(TokenDelta, view.on_delta)
        for ending in ENDINGS:
            self.bus.subscribe(ending, view.on_ended)

    def attach_diagnostics(self, diagnostics: Diagnostics) -> None:
        """Errors and notices to stderr."""
        self.bus.subscribe(ChatFailed, lambda e: diagnostics.error(e.message), priority=10)
        self.bus.subscribe(Notice, lambda e: diagnostics.notice(e.text))

    def attach_store(
        self, store: SessionStore, *, warn: Callable[[str], None] | None = None
    ) -> Recorder:
        """Record every exchange in ``store``; the front end tells the recorder where.

        The user's turn is subscribed ahead of the model manager (priority -10), so it
        is committed before the request is sent; answers are committed before views
        finish, so an answer on screen is an answer on disk.
        """
        from cortan.store.recorder import Recorder

        recorder = Recorder(store, warn=warn)
        self.bus.subscribe(ChatPrepared, recorder.on_prepared, priority=-10)
        for ending in ENDINGS:
            self.bus.subscribe(ending, recorder.on_ended, priority=-10)
        return recorder

    async def context_window(self, model: str | None) -> int:
        """The tokens of ``model``'s window that cortan fills (the REPL's ``/usage``)."""
        return (await self.context.get_budget(model)).limit

    async def ask(self, request: ChatRequested) -> ChatEnded:
        """Publish one request and return how it ended."""
        await self.bus.publish(request)
        if request.request_id not in self.endings:
            # A subscriber failed (the bus logged it) before any ending was published:
            # end the request anyway, so views, store and exit code all hear of it.
            await self.bus.publish(ChatFailed(request.request_id, "internal", INTERNAL_ERROR))
        return self.endings.pop(request.request_id)

    async def aclose(self) -> None:
        await self.manager.aclose()


def make_repl(
    app: App,
    console: Console,
    *,
    history_path: Path | None,
    store: SessionStore | None = None,
    vi_mode: bool = False,
    input: Input | None = None,
    output: Output | None = None,
) -> Repl:
    """Wire the interactive shell: prompt, completion sources, model cache, answer view.

    With a ``store``, every exchange is recorded (a new conversation until
    ``/load`` or ``--session`` says otherwise).
    """
    from cortan.config.roles import get_roles
    from cortan.render.views import MarkdownView
    from cortan.shell.actions import make_command_table
    from cortan.shell.completion import ShellCompleter
    from cortan.shell.models_cache import ModelCache
    from cortan.shell.prompt import make_history, make_prompt_session
    from cortan.shell.repl import Repl
    from cortan.shell.sessions import session_names

    commands = make_command_table()
    models = ModelCache(app.settings)
    holder: list[Repl] = []
    completer = ShellCompleter(
        commands,
        {
            "model": models.names,
            "setting": lambda: ["vi", "emacs"],
            "role": lambda: list(get_roles(app.settings)),
            "session": lambda: session_names(holder[0]) if holder else [],
        },
    )
    session = make_prompt_session(
        completer=completer,
        history=make_history(history_path),
        vi_mode=vi_mode,
        input=input,
        output=output,
    )
    app.attach_view(MarkdownView(console, code_theme=app.settings.code_theme))
    repl = Repl(app, console, session, commands, models)
    holder.append(repl)
    if store is not None:
        repl.store = store
        repl.recorder = app.attach_store(store, warn=repl.error)
        repl.recorder.start_new(None)
    return repl
