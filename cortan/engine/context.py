"""The context stage: turns a checked prompt into the messages a model is sent.

Layer: engine; ``Chat.run`` calls it after the guard. It adds the system prompt and
the conversation so far, and frames attached data (stdin, files) as labelled,
delimited blocks so the model can tell the user's instruction from the data it is
about. Where the instruction goes relative to the data (``instruction_position``) is
a setting: after is the default, since models follow an instruction that comes after
long data more reliably.

Then it fits the conversation to the model's window (engine/budget.py): the
window comes from a ``context.windows`` entry for the model, else from the
server (Ollama's ``/api/show``), else from ``context.window``. Oldest turns are
left out first, with one Notice saying how many. Token counts are local
estimates (engine/tokens.py), corrected per model by the prompt counts that
providers report back.

Some servers load only the window a request asks for and silently cut a longer
prompt: Ollama's ``num_ctx``, whose default is far below most models' windows. A
provider of that kind names its option (``Provider.window_option``), and each of
its requests carries one with room for the conversation and the answer (up to the
model's window, within ``context.ollama_num_ctx_max``); when the server reports
reading far fewer prompt tokens than were sent, :meth:`ContextManager.learn`
returns the notice that says it cut the prompt.

Other servers refuse a prompt longer than their window (llama.cpp's
``exceed_context_size_error``, OpenAI's ``context_length_exceeded``): the request
fails with a :class:`cortan.core.errors.ContextOverflowError`, often naming the
real window and the server's own count of the prompt. :meth:`ContextManager.refit`
believes both, leaves out more of the oldest turns, and ``Chat.run`` asks once more,
so that a conversation whose estimate was too low never gets stuck failing every
turn (issue 21). What was believed outlives the run when the composition root hands
in a :class:`WindowMemory` (the store's ``model_windows``): ``cortan ask --session``
is a process per turn, and each would otherwise be refused once before fitting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from cortan.core.errors import CortanError, InputError
from cortan.core.events import ChatEnded, ChatFailed, ChatFinished
from cortan.core.messages import EMPTY_MAPPING, Message
from cortan.core.recent import Recent
from cortan.core.requests import TextAttachment
from cortan.engine import budget as budgets
from cortan.engine.budget import Budget, ContextUsage
from cortan.engine.tokens import (
    LEARN_MIN_TOKENS,
    MESSAGE_OVERHEAD,
    Calibration,
    estimate_messages,
    estimate_tokens,
)

if TYPE_CHECKING:
    from cortan.config.settings import ContextSettings, ProviderConfig, Settings
    from cortan.engine.guard import Checked
    from cortan.engine.routes import Route

T = TypeVar("T")
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


class WindowMemory(Protocol):
    """Windows and estimate factors learned from servers' refusals, kept between runs.

    ``key`` names one model on one server (the route and its base URLs: another server
    behind the same provider name has a window of its own). ``recall`` gives the window
    and factor learned, either possibly None, or None when nothing was. Either call may
    raise :class:`cortan.core.errors.StoreError`; the context stage then goes on without
    the memory, since forgetting costs a request and never an answer.
    """

    def recall(self, key: str) -> tuple[int | None, float | None] | None: ...

    def remember(self, key: str, window: int | None, factor: float | None) -> None: ...

    def close(self) -> None: ...


class ModelCatalog(Protocol):
    """What the context manager asks of the model manager: names and windows."""

    def resolve(self, name: str | None) -> Route: ...

    async def get_context_length(self, name: str | None) -> int | None: ...

    async def get_window_option(self, route: Route) -> str | None: ...


# Ollama reported reading less than this share of the prompt sent: it cut the prompt.
CUT_RATIO = 0.6
# ...but only a prompt near num_ctx can have been cut: one estimated below this share
# of it would have to be more than twice its estimate to be cut. A low count for a
# smaller prompt is Ollama's prompt cache counting only new tokens (issue 21).
CUT_NEAR = 0.5
# After a cut, estimates for that model grow by this much.
CUT_WIDEN = 1.5
# After an overflow, how many times estimates grow before giving up on leaving more out.
REFIT_TRIES = 6
# Seconds to wait for a server to tell a model's window before using the configured one.
WINDOW_LOOKUP_TIMEOUT = 10.0


class Fit(NamedTuple):
    """One request's conversation as it goes out, and what to compare with the reply."""

    messages: tuple[Message, ...]
    options: Mapping[str, object]  # the window option, where the provider takes one
    dropped: str | None  # the notice for turns left out, if any
    budget: Budget
    estimate: int  # uncorrected estimate of the messages sent
    window_size: int | None
    dropped_count: int = 0  # earlier turns left out
    turns_kept: int = 0  # earlier turns sent


class ContextManager:
    """Builds each request's messages and fits them to the model's context window.

    ``models`` looks names and windows up (the model manager); without it every
    model gets the configured window. ``calibration`` holds the per-model
    corrections learned so far (one per run unless the caller shares one);
    ``memory`` keeps what an overflow taught for later runs.
    """

    lookup_timeout = WINDOW_LOOKUP_TIMEOUT

    def __init__(
        self,
        *,
        system: str | None,
        instruction_position: str = "after",
        settings: Settings | None = None,
        models: ModelCatalog | None = None,
        calibration: Calibration | None = None,
        memory: WindowMemory | None = None,
    ) -> None:
        from cortan.config.settings import ContextSettings

        self.system = system
        self.instruction_position = instruction_position
        self.limits: ContextSettings = settings.context if settings else ContextSettings()
        self._providers: dict[str, ProviderConfig] = dict(settings.providers) if settings else {}
        self._models = models
        self.calibration = calibration or Calibration()
        self._first_token: float | None = None
        if settings is not None:  # every wait sits inside the user's timeouts (issue 21)
            self._first_token = settings.timeouts.first_token
            self.lookup_timeout = min(WINDOW_LOOKUP_TIMEOUT, self._first_token)
        # Per model, and bounded: a gateway's clients name models as they like (recent.py).
        self._window_sizes: Recent[str, int] = Recent()  # the largest window asked for
        self._refused_windows: Recent[str, int] = Recent()  # windows servers named, refusing
        self._memory = memory
        self._recalled: Recent[str, None] = Recent()  # models whose kept window was looked up

    async def fit(self, checked: Checked, route: Route | None, due: float | None = None) -> Fit:
        """The conversation for ``checked``, fitted to the window of ``route``'s model;
        ``due``: the loop time the request's first token is due (see :meth:`looked_up_by`).

        Raises InputError when the newest message alone does not fit.
        """
        messages = self.build(checked)
        budget = await self.get_budget(checked.request.model, route, due)
        fitted = budgets.fit(messages, budget, self._counter(budget.model))
        dropped = budgets.describe_dropped(fitted.dropped, budget) if fitted.dropped else None
        size = self._window_size(budget, fitted.tokens)
        options = {budget.window_option: size} if size and budget.window_option else EMPTY_MAPPING
        estimate = estimate_messages(fitted.messages)
        kept = sum(1 for m in fitted.messages[:-1] if m.role == "user")
        return Fit(fitted.messages, options, dropped, budget, estimate, size, fitted.dropped, kept)

    def build(self, event: Checked) -> tuple[Message, ...]:
        """The whole conversation for this request, before any fitting."""
        system = event.request.system if event.request.system is not None else self.system
        content = compose_user_message(event.prompt, event.attachments, self.instruction_position)
        messages = [Message("system", system)] if system else []
        messages.extend(event.request.history)
        messages.append(Message("user", content, event.images))
        return alternate(messages)

    # -- windows -----------------------------------------------------------------------

    async def get_budget(
        self, name: str | None, route: Route | None = None, due: float | None = None
    ) -> Budget:
        """The window ``name`` has and how cortan fills it (raises on a bad name)."""
        if route is None and self._models is not None:
            route = self._models.resolve(name)
        key = str(route) if route else name or "default"
        option = await self._models.get_window_option(route) if self._models and route else None
        window, source = await self._get_window(name, route, due)
        limit = min(window, self.limits.ollama_num_ctx_max) if option else window
        reserve = min(self.limits.answer_reserve, limit // 2)
        return Budget(key, window, source, limit, reserve, option)

    async def _get_window(
        self, name: str | None, route: Route | None, due: float | None
    ) -> tuple[int, str]:
        key = str(route) if route else name or "default"
        if route is not None:
            self._recall(route)
        if key in self._refused_windows:  # the server itself said so, refusing a prompt
            return self._refused_windows[key], "server"
        for candidate in _names(name, route):
            if candidate in self.limits.windows:
                return self.limits.windows[candidate], "context.windows"
        reported = None
        if self._models is not None:
            # Down, slow, or no such model: the request itself will say so.
            with contextlib.suppress(CortanError, TimeoutError):
                async with asyncio.timeout_at(self.looked_up_by(due)):
                    reported = await self._models.get_context_length(name)
        if reported:
            return reported, "server"
        return self.limits.window, "context.window"

    def first_token_due(self, begun: float) -> float | None:
        """The loop time a request begun at ``begun`` is due its first token."""
        return None if self._first_token is None else begun + self._first_token

    def looked_up_by(self, due: float | None) -> float:
        """The loop time a lookup before the request (a window, capabilities) gives up.

        ``due`` is when the request's first token is due (``timeouts.first_token`` from
        its start): the lookups share that wait with the request itself, where each had
        a ``first_token`` of its own and a server that never answered failed after two
        or three of them (issue 21: every wait sits inside the user's timeouts).
        """
        until = asyncio.get_running_loop().time() + self.lookup_timeout
        return until if due is None else min(until, due)

    # -- what earlier runs learned ---------------------------------------------------------

    def _memory_key(self, route: Route) -> str:
        """One model on one server: the route, and the base URLs it is asked at."""
        provider = self._providers.get(route.provider)
        urls = provider.get_urls() if provider is not None else []
        return f"{route}@{' '.join(urls)}"

    def _recall(self, route: Route) -> None:
        """Believe what a server told an earlier run of ``route``'s window (once a run)."""
        model = str(route)
        if self._memory is None or model in self._recalled:
            return
        self._recalled[model] = None
        kept = self._use_memory(lambda memory: memory.recall(self._memory_key(route)))
        if not kept:
            return
        window, factor = kept
        if window:
            self._refused_windows.setdefault(model, window)
        if factor and model not in self.calibration.factors:
            self.calibration.raise_to(model, factor)

    def _keep(self, route: Route) -> None:
        """Keep what this run believes of ``route``'s window for the next ones."""
        model = str(route)
        window = self._refused_windows.get(model)
        factor = self.calibration.factors.get(model)
        if window or factor:
            key = self._memory_key(route)
            self._use_memory(lambda memory: memory.remember(key, window, factor))

    def _use_memory(self, call: Callable[[WindowMemory], T]) -> T | None:
        """``call`` on the memory; a store that fails is left alone for the rest of the run."""
        if self._memory is None:
            return None
        try:
            return call(self._memory)
        except CortanError as exc:
            logging.getLogger(__name__).info("learned windows are not kept: %s", exc)
            self.close()
            return None

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

    def _window_size(self, budget: Budget, tokens: int) -> int | None:
        if budget.window_option is None:
            return None
        floor = min(self.limits.ollama_num_ctx_min, self.limits.ollama_num_ctx_max)
        sticky = self._window_sizes.get(budget.model, 0)
        size = budgets.get_num_ctx(tokens, budget, floor=floor, sticky=sticky)
        self._window_sizes[budget.model] = max(sticky, size)
        return size

    async def refit(
        self, checked: Checked, route: Route | None, fit: Fit, failed: ChatFailed
    ) -> Fit:
        """The conversation again, after the server refused ``fit`` as too long for it.

        The window it named and its count of the prompt are believed from here on.
        At least one more turn is left out than before, and without a count (older
        servers say only "too large") two thirds of what was sent, as the server is
        asked only once more: the window cortan believes shrinks until that holds,
        or until InputError says the newest message alone does not fit (the one
        sentence a stuck conversation ends with instead).
        """
        model = fit.budget.model
        if failed.prompt_tokens and fit.estimate:
            self.calibration.raise_to(model, failed.prompt_tokens / fit.estimate)
        if failed.window:
            self._refused_windows[model] = failed.window
        else:  # the window is no larger than the prompt it refused, whatever was believed
            self._believe_at_most(model, self.calibration.adjust(model, fit.estimate))
        try:
            return await self._fit_harder(
                checked, route, fit, target=None if failed.prompt_tokens else fit.estimate // 3
            )
        finally:
            if route is not None:
                self._keep(route)

    def _believe_at_most(self, model: str, window: int) -> None:
        """Shrink the window believed for ``model`` to ``window`` (never grow it): a
        server that named no window refused a prompt of about this size, so shrinking
        from a default far above it (8192) would take more tries than a refit makes."""
        believed = self._refused_windows.get(model)
        if window > 0 and (believed is None or window < believed):
            self._refused_windows[model] = window

    async def _fit_harder(
        self, checked: Checked, route: Route | None, fit: Fit, target: int | None
    ) -> Fit:
        """Fit again until fewer messages go (and, without the server's count, at most
        ``target`` tokens by the estimate), shrinking the window believed as needed."""
        model = fit.budget.model
        for _ in range(REFIT_TRIES):
            again = await self.fit(checked, route)  # InputError: nothing left to leave out
            fewer = len(again.messages) < len(fit.messages)
            if fewer and (target is None or again.estimate <= target or again.turns_kept == 0):
                return again
            window = self._refused_windows.get(model, again.budget.window)
            self._refused_windows[model] = max(window * 2 // 3, 1)
        raise InputError(
            f"{model} refused the message as longer than its context window, with every "
            "earlier turn already left out: shorten it or attach less"
        )

    def close(self) -> None:
        """Let go of the memory (its store file)."""
        memory, self._memory = self._memory, None
        if memory is not None:
            memory.close()

    def learn(self, fit: Fit, ended: ChatEnded) -> str | None:
        """Correct this model's estimates from what the server counted; a notice if it cut.

        Only a finished answer from the model the conversation was fitted for
        counts: another model's count (a fallback) says nothing of this one.
        """
        if not isinstance(ended, ChatFinished) or f"{ended.provider}:{ended.model}" != str(
            fit.budget.model
        ):
            return None
        reported, model = ended.usage.prompt_tokens, fit.budget.model
        expected = self.calibration.adjust(model, fit.estimate)
        near = fit.window_size is not None and expected >= CUT_NEAR * fit.window_size
        if fit.window_size and reported and near and is_cut(reported, expected, fit.estimate):
            self.calibration.widen(model, CUT_WIDEN)
            return describe_cut(reported, expected, fit.window_size)
        self.calibration.observe(model, fit.estimate, reported)
        return None


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


def alternate(messages: Sequence[Message]) -> tuple[Message, ...]:
    """``messages`` with each run of user turns joined into one, blank line between.

    A question left unanswered (interrupted before the answer began, an empty answer)
    is kept, since the next often builds on it ("shorter, please"); sent as it stands
    it makes two user turns in a row, which a chat template that insists on turns
    alternating (llama.cpp serving Mistral's, among others) refuses, and on every later
    turn: the conversation would be stuck.
    """
    joined: list[Message] = []
    for message in messages:
        last = joined[-1] if joined else None
        if last is not None and last.role == message.role == "user":
            content = f"{last.content}\n\n{message.content}" if last.content else message.content
            joined[-1] = last._replace(content=content, images=last.images + message.images)
        else:
            joined.append(message)
    return tuple(joined)
