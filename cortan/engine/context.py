"""The context manager: turns a validated prompt into the messages a model is sent.

Engine layer. It adds the system prompt and the conversation so far, and frames
attached data (stdin, files) as labelled, delimited blocks so the model can tell
the user's instruction from the data it is about. Where the instruction goes
relative to the data (``instruction_position``) is a setting: after is the
default, since models follow an instruction that comes after long data more
reliably.

Then it fits the conversation to the model's window (engine/budget.py): the
window comes from a ``context.windows`` entry for the model, else from the
server (Ollama's ``/api/show``), else from ``context.window``. Oldest turns are
left out first, with one Notice saying how many. Token counts are local
estimates (engine/tokens.py), corrected per model by the prompt counts that
providers report back.

Ollama silently cuts a prompt longer than its ``num_ctx``, whose default is far
below most models' windows. So each Ollama request carries a ``num_ctx`` with
room for the conversation and the answer (up to the model's window, within
``context.ollama_num_ctx_max``), and when Ollama reports reading far fewer
prompt tokens than were sent, a Notice says the server cut the prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from cortan.engine import budget as budgets
from cortan.engine.budget import Budget, ContextUsage, Fitted
from cortan.engine.bus import EventBus
from cortan.engine.events import (
    ChatCancelled,
    ChatFailed,
    ChatFinished,
    ChatPrepared,
    ChatValidated,
    Notice,
    TextAttachment,
)
from cortan.engine.tokens import (
    LEARN_MIN_TOKENS,
    MESSAGE_OVERHEAD,
    Calibration,
    estimate_messages,
    estimate_tokens,
)
from cortan.errors import CortanError, InputError
from cortan.providers.base import Message

if TYPE_CHECKING:
    from cortan.config.settings import ContextSettings, ProviderConfig, Settings
    from cortan.engine.routes import Route

FENCE_RUN = re.compile(r"`{3,}")


def frame(attachment: TextAttachment) -> str:
    """A labelled fenced block whose fence cannot occur inside the data."""
    longest = max((len(m) for m in FENCE_RUN.findall(attachment.text)), default=2)
    fence = "`" * max(3, longest + 1)
    body = attachment.text if attachment.text.endswith("\n") else attachment.text + "\n"
    return f"{attachment.label}:\n{fence}\n{body}{fence}"


def compose_user_message(
    prompt: str, attachments: tuple[TextAttachment, ...], instruction_position: str
) -> str:
    """The user's turn: the instruction and the framed data, in the configured order."""
    blocks = [frame(a) for a in attachments]
    if not prompt:
        if len(attachments) == 1:  # stdin alone is the prompt itself
            return attachments[0].text
        return "\n\n".join(blocks)
    parts = [*blocks, prompt] if instruction_position == "after" else [prompt, *blocks]
    return "\n\n".join(parts)


class ModelCatalog(Protocol):
    """What the context manager asks of the model manager: names and windows."""

    def resolve(self, name: str | None) -> Route: ...

    async def get_context_length(self, name: str | None) -> int | None: ...


# Ollama reported reading less than this share of the prompt sent: it cut the prompt.
CUT_RATIO = 0.6
# After a cut, estimates for that model grow by this much.
CUT_WIDEN = 1.5
# Seconds to wait for a server to tell a model's window before using the configured one.
WINDOW_LOOKUP_TIMEOUT = 10.0


class _Sent(NamedTuple):
    """What went out for one request, to compare with what the provider reports."""

    budget: Budget
    estimate: int  # uncorrected estimate of the messages sent
    num_ctx: int | None


class ContextManager:
    """Builds each request's messages and fits them to the model's context window.

    ``models`` looks names and windows up (the model manager); without it every
    model gets the configured window. ``calibration`` holds the per-model
    corrections learned so far (one per run unless the caller shares one).
    """

    lookup_timeout = WINDOW_LOOKUP_TIMEOUT

    def __init__(
        self,
        bus: EventBus,
        *,
        system: str | None,
        instruction_position: str = "after",
        settings: Settings | None = None,
        models: ModelCatalog | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        from cortan.config.settings import ContextSettings

        self._bus = bus
        self.system = system
        self.instruction_position = instruction_position
        self.limits: ContextSettings = settings.context if settings else ContextSettings()
        self._providers: dict[str, ProviderConfig] = dict(settings.providers) if settings else {}
        self._models = models
        self.calibration = calibration or Calibration()
        self._sent: dict[int, _Sent] = {}
        self._num_ctx: dict[str, int] = {}  # the largest num_ctx sent, per model
        bus.subscribe(ChatValidated, self.on_validated)
        bus.subscribe(ChatFinished, self.on_finished)
        bus.subscribe(ChatFailed, self._forget)
        bus.subscribe(ChatCancelled, self._forget)

    async def on_validated(self, event: ChatValidated) -> None:
        request, messages = event.request, self.build(event)
        try:
            budget = await self.get_budget(request.model)
        except CortanError:  # a name that does not resolve: the model manager says why
            await self._bus.publish(ChatPrepared(request, request.model, messages))
            return
        except asyncio.CancelledError:  # Ctrl-C while the window was looked up
            await self._bus.publish(ChatCancelled(request.request_id))
            raise
        try:
            fitted = budgets.fit(messages, budget, self._counter(budget.model))
        except InputError as exc:
            await self._bus.publish(ChatFailed(request.request_id, "input", str(exc)))
            return
        if fitted.dropped:
            text = budgets.describe_dropped(fitted.dropped, budget)
            await self._bus.publish(Notice(request.request_id, text))
        options = self._options(request.request_id, budget, fitted)
        await self._bus.publish(ChatPrepared(request, request.model, fitted.messages, options))

    def build(self, event: ChatValidated) -> tuple[Message, ...]:
        """The whole conversation for this request, before any fitting."""
        system = event.request.system if event.request.system is not None else self.system
        content = compose_user_message(event.prompt, event.attachments, self.instruction_position)
        messages = [Message("system", system)] if system else []
        messages.extend(event.request.history)
        messages.append(Message("user", content))
        return tuple(messages)

    # -- windows -----------------------------------------------------------------------

    async def get_budget(self, name: str | None) -> Budget:
        """The window ``name`` has and how cortan fills it (raises on a bad name)."""
        route = self._models.resolve(name) if self._models else None
        key = str(route) if route else name or "default"
        config = self._providers.get(route.provider) if route else None
        ollama = config is not None and config.kind == "ollama"
        window, source = await self._get_window(name, route)
        limit = min(window, self.limits.ollama_num_ctx_max) if ollama else window
        reserve = min(self.limits.answer_reserve, limit // 2)
        return Budget(key, window, source, limit, reserve, ollama)

    async def _get_window(self, name: str | None, route: Route | None) -> tuple[int, str]:
        for candidate in _names(name, route):
            if candidate in self.limits.windows:
                return self.limits.windows[candidate], "context.windows"
        reported = None
        if self._models is not None:
            # Down, slow, or no such model: the request itself will say so.
            with contextlib.suppress(CortanError, TimeoutError):
                async with asyncio.timeout(self.lookup_timeout):
                    reported = await self._models.get_context_length(name)
        if reported:
            return reported, "server"
        return self.limits.window, "context.window"

    async def measure(
        self, model: str | None, history: Sequence[Message], system: str | None = None
    ) -> ContextUsage:
        """How much of ``model``'s window a conversation takes (for ``/usage``).

        ``system`` None means the configured system prompt.
        """
        budget = await self.get_budget(model)
        system = self.system if system is None else system
        messages = [Message("system", system), *history] if system else list(history)
        used = self.calibration.adjust(budget.model, estimate_messages(messages))
        return ContextUsage(budget.model, used, budget.window, budget.limit, budget.reserve)

    # -- sizes, num_ctx, and what the provider reports ------------------------------------

    def _counter(self, model: str) -> Callable[[Message], float]:
        factor = self.calibration.factor(model)
        return lambda m: factor * (estimate_tokens(m.content) + MESSAGE_OVERHEAD)

    def _options(
        self, request_id: int, budget: Budget, fitted: Fitted
    ) -> tuple[tuple[str, object], ...]:
        num_ctx = None
        if budget.ollama:
            floor = min(self.limits.ollama_num_ctx_min, self.limits.ollama_num_ctx_max)
            sticky = self._num_ctx.get(budget.model, 0)
            num_ctx = budgets.get_num_ctx(fitted.tokens, budget, floor=floor, sticky=sticky)
            self._num_ctx[budget.model] = max(sticky, num_ctx)
        self._sent[request_id] = _Sent(budget, estimate_messages(fitted.messages), num_ctx)
        return (("num_ctx", num_ctx),) if num_ctx else ()

    async def on_finished(self, event: ChatFinished) -> None:
        sent = self._sent.pop(event.request_id, None)
        if sent is None or f"{event.provider}:{event.model}" != sent.budget.model:
            return  # another model answered (fallback): its count says nothing of this one
        reported, model = event.usage.prompt_tokens, sent.budget.model
        expected = self.calibration.adjust(model, sent.estimate)
        if sent.num_ctx and reported and is_cut(reported, expected, sent.estimate):
            self.calibration.widen(model, CUT_WIDEN)
            text = describe_cut(reported, expected, sent.num_ctx)
            await self._bus.publish(Notice(event.request_id, text))
            return
        self.calibration.observe(model, sent.estimate, reported)

    def _forget(self, event: ChatFailed | ChatCancelled) -> None:
        self._sent.pop(event.request_id, None)


def _names(name: str | None, route: Route | None) -> list[str]:
    """The spellings a ``context.windows`` entry may use for one model."""
    if route is None:
        return [name] if name else []
    names = [str(route), route.model, route.model.removesuffix(":latest")]
    return [name, *names] if name else names


def is_cut(reported: int, expected: int, estimate: int) -> bool:
    """Whether Ollama read clearly less of the prompt than was sent.

    Estimates err by about 10%; a count far below one means Ollama dropped part of
    the prompt to fit its ``num_ctx``. Small prompts are not judged: the chat
    template's own tokens make their counts noisy.
    """
    return estimate >= LEARN_MIN_TOKENS and reported < CUT_RATIO * expected


def describe_cut(reported: int, expected: int, num_ctx: int) -> str:
    return (
        f"Ollama read only {reported} of about {expected} prompt tokens "
        f"(num_ctx {num_ctx}): it cut the start of the conversation; "
        "cortan leaves more room from the next request on"
    )
