"""Token budgets: how much of a model's window a request may fill, and what to leave out.

Engine layer, pure functions and values (the context manager drives them). A
conversation is cut into pinned messages (system prompts), turns (a user
message and the answers after it) and the newest message. When it does not fit,
whole turns are left out, oldest first, so the model never sees half an
exchange; the pinned messages and the newest message (which carries the files
attached to it) always stay, and when they alone are too large the request is
refused with one sentence instead of being cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from cortan.core.errors import InputError
from cortan.core.messages import Message

# Estimates are within about 10% (engine/tokens.py): count a little high rather than overflow.
MARGIN = 1.1


class Budget(NamedTuple):
    """The window of one model as cortan uses it.

    ``window`` is the model's own (``source`` says who said so: the server, a
    ``context.windows`` entry, or the ``context.window`` default); ``limit`` is
    what cortan fills, the window or less where ``context.ollama_num_ctx_max``
    caps it (on servers that load the window a request asks for, whose provider
    names the option that asks: ``window_option``, Ollama's ``num_ctx``);
    ``reserve`` is kept free for the answer.
    """

    model: str
    window: int
    source: str
    limit: int
    reserve: int
    window_option: str | None = None  # the option that sizes the server's window (num_ctx)

    @property
    def room(self) -> int:
        """Tokens the prompt may take."""
        return max(self.limit - self.reserve, 0)

    def describe(self) -> str:
        """The limit in words, for notices and errors."""
        if self.limit < self.window:
            return f"the {self.limit}-token limit (context.ollama_num_ctx_max)"
        return f"the {self.limit}-token window"


class ContextUsage(NamedTuple):
    """What a conversation takes of a model's window (the REPL's ``/usage``)."""

    model: str
    used: int
    window: int
    limit: int
    reserve: int

    @property
    def left(self) -> int:
        """Tokens still free for more conversation, after the answer's reserve."""
        return max(self.limit - self.reserve - self.used, 0)


class Fitted(NamedTuple):
    """The messages to send, their estimated size, and how many turns were left out."""

    messages: tuple[Message, ...]
    tokens: int
    dropped: int


def split_turns(messages: Sequence[Message]) -> list[tuple[bool, list[int]]]:
    """Units of the conversation as (pinned, indices): pinned system messages and turns.

    The newest message is a unit of its own, pinned. A turn starts at each user
    message and runs up to the next one or to a system message.
    """
    units: list[tuple[bool, list[int]]] = []
    last = len(messages) - 1
    for index, message in enumerate(messages):
        if message.role == "system" or index == last:
            units.append((True, [index]))
        elif message.role == "user" or not units or units[-1][0]:
            units.append((False, [index]))
        else:
            units[-1][1].append(index)
    return units


def fit(messages: Sequence[Message], budget: Budget, count: Callable[[Message], float]) -> Fitted:
    """Leave out the oldest turns until the rest fits ``budget.room``.

    ``count`` gives a message's size in tokens, template overhead included.
    Raises InputError when the pinned messages and the newest one alone do not fit.
    """
    units = split_turns(messages)

    def size(indices: list[int]) -> float:
        return MARGIN * sum(count(messages[i]) for i in indices)

    total = sum(size(indices) for pinned, indices in units if pinned)
    if total > budget.room:
        raise too_large(budget, math.ceil(total))
    keep = [pinned for pinned, _ in units]
    for position in reversed(range(len(units))):
        pinned, indices = units[position]
        if pinned:
            continue
        cost = size(indices)  # sized newest first, and only until one does not fit
        if total + cost > budget.room:
            break  # this turn and every older one stay out
        keep[position] = True
        total += cost
    kept = [i for (_, indices), k in zip(units, keep, strict=True) if k for i in indices]
    dropped = keep.count(False)
    return Fitted(tuple(messages[i] for i in kept), math.ceil(total), dropped)


def too_large(budget: Budget, tokens: int) -> InputError:
    return InputError(
        f"the message is about {tokens} tokens, more than the {budget.room} that fit in "
        f"{budget.describe()} with {budget.reserve} kept for the answer: "
        "shorten it or attach less"
    )


def describe_dropped(dropped: int, budget: Budget) -> str:
    turns = "1 earlier turn" if dropped == 1 else f"{dropped} earlier turns"
    return f"{turns} left out to fit {budget.describe()}"


def get_num_ctx(tokens: int, budget: Budget, *, floor: int, sticky: int = 0) -> int:
    """Ollama's ``num_ctx`` for a prompt of ``tokens``: room for it and the answer.

    Sizes double from ``floor`` rather than follow the conversation token by token,
    and never shrink below ``sticky`` (the largest this run used): Ollama reloads
    the model whenever ``num_ctx`` changes, which costs seconds.
    """
    needed = tokens + budget.reserve
    size = max(floor, 1)
    while size < needed:
        size *= 2
    return min(max(size, sticky), budget.limit)
