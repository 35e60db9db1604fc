"""What one JSON Schema check may spend: time, steps, and the patterns it may match.

Layer: engine. :mod:`cortan.engine.validation` and the keywords it runs
(:mod:`cortan.engine.keywords`) share these bounds, so that one check is bounded as a
whole, whichever keyword does the work:

- a :class:`Budget` of :data:`DEADLINE` seconds and a number of steps, held in a context
  variable for the length of one check (jsonschema's keywords have no room to pass one;
  checks running side by side in threads each have theirs), spent by :func:`spend`;
- patterns compiled by the ``regex`` package only when small once unrolled: ``regex``
  writes every repeat out when compiling, with no timeout (``((a|b){1000}){100}`` took
  0.2 s and 57 MB to compile, and a compiled pattern is kept for the next check), so
  :func:`compile_pattern` refuses a count over :data:`MAX_REPEAT` and a pattern over
  :data:`MAX_PATTERN_SIZE` elements once its repeats are written out (a character class
  counts as its characters: 30,000 of them repeated 10,000 times took 1.3 GB);
- patterns matched with ``regex``'s own timeout, the budget's time left (:func:`search`):
  Python's ``re`` has none, and ``^(a|aa)+$`` against 60 letters takes it days.

Past a bound: :class:`UncheckableError`, with the sentence the user reads. A check run
as a first pass (:func:`first_pass`: :mod:`cortan.engine.checks` gives every check a
short slice before the full deadline) that runs out of its slice raises
:class:`SliceSpent` instead, and is run again, whole, where long checks wait.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, NoReturn

from cortan.core.errors import CortanError
from cortan.core.text import shorten

if TYPE_CHECKING:
    import regex

DEADLINE = 1.0  # seconds for one check: a document, or a schema itself
MAX_STEPS = 100_000  # keyword evaluations for one document (fan-out of $ref, anyOf, ...)
MAX_REPEAT = 1000  # the largest {n} a pattern may hold
MAX_PATTERN_SIZE = 10_000  # elements of one pattern once its repeats are written out
MAX_PATTERN_CHARS = 4 * MAX_PATTERN_SIZE  # each element is a character or more; some syntax


class UncheckableError(CortanError):
    """A document could not be checked against a schema within cortan's bounds."""

    kind = "schema"


class SliceSpent(Exception):
    """A first pass ran out of its slice: the check is to be run again, with its full
    deadline. Not a CortanError, nor any exception the checks themselves catch."""


class Budget:
    """What one check may still spend: steps, and time until the deadline; in a first
    pass, also the slice, counted in this thread's own CPU time.

    The slice was wall-clock time: while a long check's ``regex`` compile held the
    interpreter's lock (7 ms a pattern, in C), a small schema's 5 ms first pass waited
    past its 20 ms, went to the long-check queue as if it were long, and was refused
    503 with the long ones. Its CPU time is what tells a short check from a long one.
    A first pass waiting that long on the lock is cut at the deadline (and run again
    whole, as one that spent its slice).
    """

    def __init__(self, seconds: float, steps: int) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        sliced = _slice.get()
        self.slice_end = None if sliced is None else time.thread_time() + sliced
        self.steps = steps
        self.limit = steps

    def spend(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise UncheckableError(f"checking took more than {self.limit} steps")
        if time.monotonic() > self.deadline or (
            self.slice_end is not None and time.thread_time() > self.slice_end
        ):
            self.overrun()

    def overrun(self) -> NoReturn:
        """Out of time: of the slice (run it again whole), or of the deadline."""
        if self.slice_end is not None:
            raise SliceSpent
        raise UncheckableError(f"checking took more than {self.seconds:g} s")

    def left(self) -> float:
        """Seconds a match may take (``regex`` times it by the clock): the deadline's,
        or in a first pass the CPU time left of the slice, if that is less."""
        left = self.deadline - time.monotonic()
        if self.slice_end is not None:
            left = min(left, self.slice_end - time.thread_time())
        return max(left, 0.001)


_budget: ContextVar[Budget] = ContextVar("cortan_schema_budget")
_slice: ContextVar[float | None] = ContextVar("cortan_schema_slice", default=None)


@contextmanager
def first_pass(seconds: float) -> Iterator[None]:
    """Checks begun inside the block stop after ``seconds`` with SliceSpent, unless done."""
    token = _slice.set(seconds)
    try:
        yield
    finally:
        _slice.reset(token)


@contextmanager
def budgeted(seconds: float = DEADLINE, steps: int = MAX_STEPS) -> Iterator[Budget]:
    """One check's budget, for the code this thread (or task) runs inside the block."""
    budget = Budget(seconds, steps)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def spend() -> None:
    """One step of the current check; UncheckableError past its steps or its deadline."""
    _budget.get().spend()


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, within the check's time left."""
    budget = _budget.get()
    try:
        return compile_pattern(pattern).search(text, timeout=budget.left()) is not None
    except TimeoutError:
        if budget.slice_end is not None:
            raise SliceSpent from None
        raise UncheckableError(
            f"matching the pattern {shorten(pattern, 80)!r} took too long"
        ) from None


# Small: a pattern of MAX_PATTERN_SIZE elements compiles to about 2 MB.
@functools.lru_cache(maxsize=32)  # at most ~64 MB held, by the 2 MB bound above
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """``pattern`` for the ``regex`` package, once it is known to compile small."""
    import regex

    _check_size(pattern)
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise UncheckableError(f"is not a regular expression cortan can match: {exc}") from None


def _check_size(pattern: str) -> None:
    """Refuse a pattern ``regex`` would compile large: a huge ``{n}``, or too many
    elements once the repeats are written out (a group's size times its count)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UncheckableError(
            f"is {len(pattern)} characters long; cortan matches at most {MAX_PATTERN_CHARS}"
        )
    sizes = [0]  # the size so far of each group open here, outermost first
    last = total = 0  # the size of the element a count would repeat; of the whole
    for token, size, numbers in _tokens(pattern):
        if token == "(":
            sizes.append(0)
        elif token == ")" and len(sizes) > 1:
            last = sizes.pop()
            sizes[-1] += last
        elif token == "{":
            count = _get_count(numbers)
            sizes[-1] += last * (count - 1)
            total += last * (count - 1)
            last *= count
        else:
            last = size
            sizes[-1] += size
            total += size
        if total > MAX_PATTERN_SIZE:
            raise UncheckableError(
                f"is more than {MAX_PATTERN_SIZE} elements long once its repeats are "
                f"written out; cortan matches at most {MAX_PATTERN_SIZE}"
            )


def _get_count(numbers: list[str]) -> int:
    """The most times a ``{n,m}`` repeats; UncheckableError over :data:`MAX_REPEAT`."""
    for number in numbers:
        if len(number) > 9 or int(number) > MAX_REPEAT:  # 4300-digit ints raise
            raise UncheckableError(
                f"repeats up to {shorten(number, 20)} times; cortan matches at most {MAX_REPEAT}"
            )
    return max(int(number) for number in numbers)


def _tokens(pattern: str) -> Iterator[tuple[str, int, list[str]]]:
    """``pattern`` as what its size depends on: ``(``, ``)``, ``{`` (a count, with its
    numbers), and any other element with its size (an escape is one, a character class
    as many as its characters)."""
    index, end = 0, len(pattern)
    while index < end:
        char = pattern[index]
        if char == "\\":
            index += 2
            yield "atom", 1, []
            continue
        if char == "[":
            start, index = index, _class_end(pattern, index)
            yield "atom", index - start, []
            continue
        if char in "()":
            yield char, 0, []
        elif char == "{" and (counts := _read_count(pattern, index)) is not None:
            index, numbers = counts
            yield "{", 0, numbers
            continue
        elif char not in "|*+?":
            yield "atom", 1, []
        index += 1


def _class_end(pattern: str, index: int) -> int:
    """The index after the character class opening at ``index`` (``]`` first is a member)."""
    index += 1
    if pattern.startswith("^", index):
        index += 1
    if pattern.startswith("]", index):
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _read_count(pattern: str, index: int) -> tuple[int, list[str]] | None:
    """``{n}``, ``{n,}``, ``{,m}`` or ``{n,m}`` at ``index``: the index after it and its
    numbers; None when the brace is a literal one. Read forward over digits and commas
    only, so that a pattern of braces and no ``}`` is read once, not once per brace."""
    end = index + 1
    while end < len(pattern) and pattern[end] in _COUNT_CHARS:
        end += 1
    parts = pattern[index + 1 : end].split(",")
    if end == len(pattern) or pattern[end] != "}" or len(parts) > 2 or not any(parts):
        return None
    return end + 1, [part for part in parts if part]


_COUNT_CHARS = frozenset("0123456789,")  # ASCII only, as regex reads a count ("²" is not)
