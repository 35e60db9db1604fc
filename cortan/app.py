"""The composition root: the one place that names concrete classes and wires them.

Layer: app, under the cli and over every front end. :meth:`App.build` makes the
bus and the engine from settings (guard, context stage, model manager, and the
pipeline ``Chat`` that runs them) and registers ``Chat.run`` as the one handler of
``ChatRequest``. Observers are subscribed here and nowhere else, each at the
priority that keeps the promises of docs/architecture.md ("The rules"):

* the recorder before the view, on ``ChatPrepared`` (the question is on disk
  before it is sent) and on every ending (an answer on screen is an answer on disk);
* the view and the recorder as *essential* observers: when either cannot do its
  work the request fails visibly with the partial kept (engine/bus.py);
* notices for the user (diagnostics on stderr, the REPL's dim lines) as plain ones.

Front ends receive the services they need, never this module: the REPL gets an
``App`` through the narrow :class:`cortan.shell.services.ShellServices` protocol,
wired by :func:`make_repl`; the gateway gets one through
:class:`cortan.serve.services.GatewayServices`, wired by :func:`make_gateway`, and
registers a watcher per request (:meth:`App.watch`): one fan-out observer, keyed by
request id, hands each request's pieces to its own client; a batch job gets one through
:class:`cortan.batch.services.BatchServices`, wired by :func:`make_batch`. The
response cache is the engine's (a stage of ``Chat.run``), turned on by
:meth:`App.use_cache` with the store's table.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cortan.core.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ChatPrepared,
    ChatStarted,
    Notice,
    ThinkingDelta,
    TokenDelta,
    ToolCalled,
    ToolResult,
)
from cortan.core.requests import THINK_VALUES, ChatRequest
from cortan.engine.bus import EventBus
from cortan.engine.chat import Chat
from cortan.engine.context import ContextManager
from cortan.engine.guard import Guard, find_remote_provider
from cortan.engine.manager import ModelManager

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, TextIO

    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output
    from rich.console import Console

    from cortan.batch.inputs import Record
    from cortan.batch.items import RequestSpec
    from cortan.batch.progress import ProgressView
    from cortan.batch.runner import BatchRunner
    from cortan.command.dialogue import Terminal
    from cortan.command.mode import CommandMode
    from cortan.config.settings import Settings
    from cortan.core.errors import StoreError
    from cortan.core.messages import Message, ModelInfo, PullProgress
    from cortan.engine.approval import ApprovalGate
    from cortan.engine.budget import ContextUsage
    from cortan.engine.catalog import HostReport, Listing
    from cortan.engine.hosts import HostState
    from cortan.engine.routes import Route
    from cortan.engine.tools.toolbox import Toolbox
    from cortan.render.views import AnswerView
    from cortan.serve.gateway import Gateway
    from cortan.serve.services import Watcher
    from cortan.shell.repl import Repl
    from cortan.shell.services import Ask, RunCommand
    from cortan.store.cache import CacheStore
    from cortan.store.jobs import Job, JobStore
    from cortan.store.recorder import Recorder
    from cortan.store.sessions import SessionStore
    from cortan.store.windows import WindowStore

ENDINGS: tuple[type[ChatEnded], ...] = (ChatFinished, ChatFailed, ChatCancelled)
#: Seconds one host may take to list its models before it counts as down.
LISTING_GRACE = 10.0


@dataclass
class App:
    """The wired services of one process: the bus, the pipeline, the model manager."""

    settings: Settings
    bus: EventBus
    chat: Chat
    manager: ModelManager
    store: SessionStore | None = None
    recorder: Recorder | None = None
    run_command: RunCommand | None = None  # the REPL's /run (wired by make_repl)
    gate: ApprovalGate | None = None  # made by use_tools or on first use by /run; closed here
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _watchers: dict[int, Watcher] = field(default_factory=dict)
    _watching: bool = False
    toolbox: Toolbox | None = None

    @classmethod
    def build(cls, settings: Settings, *, concurrent: bool = False) -> App:
        """Wire the engine; ``concurrent`` for a front end that sends many requests at
        once (the gateway, a batch): its providers' HTTP runs on aiohttp."""
        bus = EventBus()
        manager = ModelManager(bus, settings, concurrent=concurrent)
        guard = Guard(
            max_bytes=settings.max_input_bytes,
            max_image_bytes=settings.max_image_bytes,
            find_remote=lambda request: find_remote_provider(
                manager.router, settings.providers, request
            ),
        )
        context = ContextManager(
            system=settings.system,
            instruction_position=settings.instruction_position,
            settings=settings,
            models=manager,
            memory=_make_window_memory(),
        )
        chat = Chat(bus, guard, context, manager)
        bus.handle(ChatRequest, chat.run)
        return cls(settings, bus, chat, manager)

    # -- running requests --------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    async def ask(self, request: ChatRequest) -> ChatEnded:
        """Dispatch one request on the bus; its ending comes back here.

        Where the store's writes run on a thread of their own (the gateway), a request
        first waits while that thread is too far behind: cortan.store.writer.
        """
        if self.store is not None and self.store.writer is not None:
            try:
                await self.store.writer.room()
            except asyncio.CancelledError:  # its client left while it waited: never sent
                if (task := asyncio.current_task()) is not None:
                    task.uncancel()
                return ChatCancelled(request.request_id)
        ended: ChatEnded = await self.bus.dispatch(request)
        return ended

    # -- observers: subscribed here and nowhere else -----------------------------------

    def attach_view(self, view: AnswerView) -> None:
        """Show answers through ``view``: essential, since the answer is the user's."""
        work = "show the answer"
        self.bus.subscribe(ChatPrepared, view.on_waiting)
        self.bus.subscribe(ChatStarted, view.on_started, essential=work)
        self.bus.subscribe(TokenDelta, view.on_delta, essential=work)
        self.bus.subscribe(ThinkingDelta, view.on_thinking)  # shown apart; never the answer
        self.bus.subscribe(ToolCalled, view.on_tool)  # before the call's line and question
        for ending in ENDINGS:
            self.bus.subscribe(ending, view.on_ended, essential=work)

    def attach_notices(self, notice: Callable[[str], None]) -> None:
        """Dim one-line remarks (fallbacks, waits, turns left out) go to ``notice``."""
        self.bus.subscribe(Notice, lambda event: notice(event.text))

    def watch(self, request_id: int, watcher: Watcher) -> Callable[[], None]:
        """Hand request ``request_id``'s outcomes to ``watcher`` alone, until the call returned.

        One observer per event type serves every watched request (subscribed on the
        first watch): a look-up by request id per piece, not a subscription per
        request. Essential: the watcher's work is the client's answer.
        """
        if not self._watching:
            self._subscribe_watchers()
        self._watchers[request_id] = watcher
        return lambda: self._forget(request_id)

    def _subscribe_watchers(self) -> None:
        self._watching = True
        watchers = self._watchers
        work = "send the answer to its client"

        def on_started(event: ChatStarted) -> None:
            if (watcher := watchers.get(event.request_id)) is not None:
                watcher.on_started(event)

        def on_delta(event: TokenDelta) -> Awaitable[None] | None:
            watcher = watchers.get(event.request_id)
            return watcher.on_delta(event) if watcher is not None else None

        def on_notice(event: Notice) -> None:
            if (watcher := watchers.get(event.request_id)) is not None:
                watcher.on_notice(event)

        def on_thinking(event: ThinkingDelta) -> None:
            if (watcher := watchers.get(event.request_id)) is not None:
                watcher.on_thinking(event)

        self.bus.subscribe(ChatStarted, on_started, essential=work)
        self.bus.subscribe(TokenDelta, on_delta, essential=work)
        self.bus.subscribe(ThinkingDelta, on_thinking, essential=work)
        self.bus.subscribe(Notice, on_notice)

    def _forget(self, request_id: int) -> None:
        self._watchers.pop(request_id, None)

    def attach_store(
        self, store: SessionStore, *, each_request_new: bool = False, threads: bool = False
    ) -> Recorder:
        """Record every exchange in ``store``; the front end tells the recorder where.

        Ahead of the view on the same events (priority -10): the question is
        committed before it is sent, and an answer on screen is an answer on disk.
        ``each_request_new`` gives every request a conversation of its own (a batch,
        whose requests run side by side); ``threads`` one of its own unless its
        history is a stored conversation, which it goes on with (the gateway, whose
        clients send their history with every request).
        """
        from cortan.store.recorder import Recorder

        recorder = Recorder(store, each_request_new=each_request_new, threads=threads)
        work = "save the exchange"
        self.bus.subscribe(ChatPrepared, recorder.on_prepared, priority=-10, essential=work)
        for ending in ENDINGS:
            self.bus.subscribe(ending, recorder.on_ended, priority=-10, essential=work)
        self.store, self.recorder = store, recorder
        if self.toolbox is not None:
            self._record_tools(recorder)
        return recorder

    def use_cache(self, store: CacheStore) -> None:
        """Answer requests that ask for it from ``store``, and keep finished answers there."""
        from cortan.engine.cache import AnswerCache

        manager = self.manager
        self.chat.cache = AnswerCache(
            self.bus, self.settings, manager.router, store, get_digest=manager.get_digest
        )

    def use_tools(self, gate: ApprovalGate) -> Toolbox:
        """Let requests with ``tools`` on call tools, each call decided by ``gate``.

        The toolbox holds the built-ins the config names and the MCP servers (started
        on first use, stopped by :meth:`aclose`).
        """
        from cortan.engine.tools.loop import ToolLoop
        from cortan.engine.tools.toolbox import Toolbox

        toolbox = Toolbox.from_settings(self.settings)
        self.chat.tools = ToolLoop(
            self.bus, self.manager, gate, toolbox, self.settings.tools, checks=self.chat.checks
        )
        self.gate, self.toolbox = gate, toolbox
        if self.recorder is not None:
            self._record_tools(self.recorder)
        return toolbox

    async def list_tools(
        self,
        on_error: Callable[[str], Awaitable[None]],
        on_note: Callable[[str], Awaitable[None]] | None = None,
    ) -> list[tuple[str, str]]:
        """Every tool a model may be offered, as (name, description); MCP servers start.

        A server that cannot start is told to ``on_error`` and the others are still
        listed, as ``cortan tools`` lists them; what a server's listing left out (bad
        names, names two servers share), to ``on_note``, once. ToolError when tools
        were not set up here.
        """
        from cortan.core.errors import ToolError

        if self.toolbox is None:
            raise ToolError("tools are not available here")
        found = await self.toolbox.list_tools(on_error, on_note)
        return [(tool.name, tool.description) for tool in found]

    def attach_tool_lines(
        self, show: Callable[[str], None], keep: list[ToolResult] | None = None
    ) -> None:
        """One dim line per tool call and per outcome goes to ``show`` (made visible);
        the outcomes also to ``keep`` when given (``ask --json`` reports them)."""
        from cortan.render.toollines import describe_call, describe_result

        self.bus.subscribe(ToolCalled, lambda event: show(describe_call(event)))

        def outcome(event: ToolResult) -> None:
            if (line := describe_result(event)) is not None:
                show(line)

        self.bus.subscribe(ToolResult, outcome)
        if keep is not None:
            self.bus.subscribe(ToolResult, keep.append)

    def _record_tools(self, recorder: Recorder) -> None:
        work = "save the exchange"
        self.bus.subscribe(ToolResult, recorder.on_tool, priority=-10, essential=work)

    # -- what the front ends may ask besides answers -----------------------------------

    def get_capacity(self, names: Sequence[str | None]) -> int:
        return self.manager.get_capacity(names)

    def resolve(self, name: str | None) -> Route:
        return self.manager.resolve(name)

    def host_states(self) -> list[HostState]:
        return self.manager.host_states()

    async def list_models(
        self, names: Sequence[str] | None = None, *, details: bool = False
    ) -> dict[str, Listing]:
        """Every named provider's models (all by default), asked of every host at once.

        ``details`` adds what each server says of each model (capabilities, window).
        """
        from cortan.engine.catalog import describe, gather_models

        names = list(self.settings.providers) if names is None else names
        limit = self.settings.timeouts.connect + LISTING_GRACE
        listing = await gather_models(self.manager, names, limit=limit)
        return await describe(self.manager, listing) if details else listing

    async def show_model(self, name: str | None) -> ModelInfo:
        """What the server says of one model (``cortan models show``)."""
        return await self.manager.show_model(name)

    def pull_model(self, name: str) -> AsyncIterator[PullProgress]:
        """Download a model onto its Ollama server, step by step (``cortan models pull``)."""
        return self.manager.pull_model(name)

    async def survey_hosts(self) -> list[HostReport]:
        """Every host of every provider: models, latency, version (``cortan doctor``)."""
        from cortan.engine.catalog import survey_hosts

        limit = self.settings.timeouts.connect + LISTING_GRACE
        names = list(self.settings.providers)
        return await survey_hosts(self.manager, names, limit=limit, versions=True)

    async def measure(
        self, model: str | None, history: Sequence[Message], system: str | None
    ) -> ContextUsage:
        """How much of ``model``'s window a conversation takes (the REPL's ``/usage``)."""
        return await self.chat.context.measure(model, history, system)

    async def check_schema(self, schema: object) -> None:
        """Refuse a client's schema cortan will not use (UsageError), checked beside the
        event loop; BusyError when long checks are already queued (engine/checks.py)."""
        from cortan.engine.validation import check_schema

        await self.chat.checks.check(check_schema, schema, refusable=True)

    async def context_window(self, model: str | None) -> int:
        """The tokens of ``model``'s window that cortan fills."""
        return (await self.chat.context.get_budget(model)).limit

    async def aclose(self) -> None:
        try:
            if self.toolbox is not None:
                await self.toolbox.aclose()  # MCP servers stop with cortan
        finally:
            if self.gate is not None:
                self.gate.close()
                self.gate = None
            self.chat.context.close()
            self.chat.checks.close()
            await self.manager.aclose()


def _make_window_memory() -> WindowStore:
    """Windows servers named in a refusal, kept in the store for the next runs (issue 21).

    Kept whatever ``log`` says, like the approval gate's decisions: it is what the
    servers are, not what was said. The file is opened only when a window is looked up
    and a store exists, or when there is something to keep.
    """
    from cortan.config.paths import get_data_dir
    from cortan.store.windows import WindowStore

    return WindowStore(get_data_dir())


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
    from cortan.core.options import OPTIONS
    from cortan.render.terminal import MarkdownView, WaitOnly
    from cortan.render.views import SkipQuiet
    from cortan.shell.actions import make_command_table
    from cortan.shell.completion import ShellCompleter
    from cortan.shell.models_cache import ModelCache
    from cortan.shell.prompt import make_history, make_prompt_session
    from cortan.shell.repl import Repl
    from cortan.shell.sessions import session_names

    if store is not None:
        app.attach_store(store).start_new(None)
    commands = make_command_table()
    models = ModelCache(lambda: App.build(app.settings), list(app.settings.aliases))
    completer = ShellCompleter(
        commands,
        {
            "model": models.names,
            "setting": lambda: ["vi", "emacs", *OPTIONS],
            "think": lambda: [*THINK_VALUES, "default"],
            "role": lambda: list(get_roles(app.settings)),
            "session": lambda: session_names(app.store),
        },
        {"model": models.describe},
    )
    session = make_prompt_session(
        completer=completer,
        history=make_history(history_path),
        vi_mode=vi_mode,
        input=input,
        output=output,
    )
    view = MarkdownView(
        console,
        code_theme=app.settings.code_theme,
        fold=True,
        tail=app.settings.show_thinking,
        hint=" (/thinking shows it)",
    )
    app.attach_view(SkipQuiet(view, WaitOnly(view)))  # /run's proposal: its dialogue's
    app.run_command = _make_run_command(app, color=not console.no_color)
    repl = Repl(app, console, session, commands, models)
    app.attach_notices(repl.dim)
    _give_tools(app, repl)
    return repl


def _give_tools(app: App, repl: Repl) -> None:
    """The REPL's tools: the gate logging in the store, the terminal to ask on, a dim
    line per call; on when the config says so, else from ``/tools on``."""
    from cortan.config.paths import get_data_dir
    from cortan.render.asking import open_terminal_asker

    app.use_tools(make_gate(app.settings, get_data_dir()))
    app.attach_tool_lines(repl.dim)
    repl.conversation.tools = app.settings.tools.enabled
    repl.conversation.ask = open_terminal_asker()


def make_gateway(
    app: App,
    *,
    token: str | None,
    store: SessionStore | None = None,
    beyond_loopback: bool = False,
) -> Gateway:
    """Wire the gateway: every request recorded in ``store`` (in the conversation it goes on).

    ``token`` None serves without one (only ever on loopback: the CLI refuses it
    beyond); ``beyond_loopback`` lets IP-literal Host headers in. The store's
    writes run on a thread of their own, committed in groups (``GROUP_COMMIT_S``
    after the first write of each group, and when the store closes):
    cortan.store.writer.
    """
    from cortan.serve.gateway import Gateway
    from cortan.serve.routes import make_routes
    from cortan.store.writer import Writer

    if store is not None:
        Writer(store, seconds=GROUP_COMMIT_S, on_lost=_report_lost)
        app.attach_store(store, threads=True)
    return Gateway(app, token=token, make_routes=make_routes, beyond_loopback=beyond_loopback)


#: How long the gateway's store writes wait for others to share their commit.
GROUP_COMMIT_S = 0.005


def _report_lost(error: StoreError) -> None:
    import logging

    logging.getLogger("cortan.store").error("cortan serve: requests were not saved: %s", error)


def make_batch(
    app: App,
    jobs: JobStore,
    job: Job,
    records: Iterator[Record],
    spec: RequestSpec,
    output: TextIO,
    progress: ProgressView,
    **options: Any,
) -> BatchRunner:
    """Wire a batch job: the runner on the engine, the engine's notices to its display."""
    from cortan.batch.runner import BatchRunner

    runner = BatchRunner(app, jobs, job, records, spec, output, progress, **options)
    app.bus.subscribe(Notice, runner.on_notice)
    return runner


def make_gate(settings: Settings, data_dir: Path | None) -> ApprovalGate:
    """The approval gate, logging its decisions in the store in ``data_dir``.

    Decisions are logged even with ``log = false`` (that turns off keeping the
    conversations, not the record of what was allowed to run). A store that cannot be
    opened (read-only, refused) leaves the gate working with grants for this process
    only, and says so in the debug log: a broken store must not make cortan run things
    it would otherwise have asked about, nor refuse what the user just approved.
    """
    import logging

    from cortan.core.errors import StoreError
    from cortan.engine.approval import ApprovalGate
    from cortan.store.approvals import ApprovalStore

    def open_store() -> ApprovalStore | None:  # on the first decision, not before
        if data_dir is None:
            return None
        try:
            return ApprovalStore.open(data_dir)
        except StoreError as exc:
            logging.getLogger(__name__).warning("decisions will not be kept: %s", exc)
            return None

    return ApprovalGate(settings.approval, open_store=open_store)


def make_command_mode(
    app: App,
    gate: ApprovalGate,
    terminal: Terminal | None,
    *,
    model: str | None = None,
    history: Sequence[Message] = (),
    ask: Ask | None = None,
    own_sigint: bool = True,
    standing_runs: bool = False,
    shell: str | None = None,
) -> CommandMode:
    """Wire command mode: the model asked through ``ask`` (the app's by default), the gate.

    ``history`` and ``ask`` are the REPL's for ``/run`` (its conversation, its Ctrl-C);
    ``own_sigint`` is off there, since the REPL has its own handler; ``standing_runs``
    (``--yes``) lets an allowlist or grant run the command without the question.
    """
    from cortan.command.environment import detect
    from cortan.command.mode import CommandMode
    from cortan.command.proposal import CommandModel

    env = detect(shell)
    proposer = CommandModel(ask or app.ask, app.next_id, env, model=model, history=history)
    return CommandMode(
        proposer,
        gate,
        env,
        terminal,
        keep_history=app.settings.commands.history,
        own_sigint=own_sigint,
        standing_runs=standing_runs,
    )


def _make_run_command(app: App, *, color: bool) -> RunCommand:
    """The REPL's ``/run``: command mode on the REPL's terminal, in its conversation."""

    async def run_command(
        words: str,
        *,
        ask: Ask,
        model: str | None,
        history: Sequence[Message],
        input: Input,
        output: Output,
    ) -> int | None:
        from cortan.command.dialogue import Terminal
        from cortan.config.paths import get_data_dir

        if app.gate is None:
            app.gate = make_gate(app.settings, get_data_dir())
        terminal = Terminal(input, output, color=color)
        mode = make_command_mode(
            app, app.gate, terminal, model=model, history=history, ask=ask, own_sigint=False
        )
        return (await mode.run(words)).status

    return run_command
