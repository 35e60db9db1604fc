"""Token counts without a tokenizer: a local estimate, corrected by what providers report.

Engine layer. The context manager needs token counts before anything is sent,
for every model cortan can talk to, without downloading a vocabulary at run
time (tiktoken fetches its BPE files from the network) and without slowing the
start of ``cortan ask``. So the count is estimated: text is split the way
modern BPE tokenizers pre-split it (words with their leading space, digit
groups of up to three, punctuation runs, whitespace), and each piece is charged
what such tokenizers usually spend on it: one token for a short word, more for
a long or non-English one, about one per CJK character. Measured against
OpenAI's cl100k vocabulary, files of English prose, Markdown, Python, C and JSON
come out 3-7% off on average (JSON full of CamelCase names up to 17% under);
tests/engine/test_tokens.py pins a few samples. Llama 3's vocabulary adds to
cl100k's, so it counts English about alike; other families differ more, which
is what calibration is for.

Providers report what a prompt really cost (``Usage.prompt_tokens``).
:class:`Calibration` learns a per-model factor from those reports, for the
rest of the run, so a model whose tokenizer is leaner or greedier than the
estimate gets budgets that fit it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from cortan.core.messages import Message
from cortan.core.recent import Recent

# The pre-split of cl100k / Llama 3 style tokenizers, in Python's `re` dialect
# ([^\W\d_] is a letter, [^\s\w]|_ a symbol): a contraction, a word with an
# optional leading symbol, up to three digits, a run of symbols, or whitespace.
PIECE = re.compile(
    r"'(?:[sdmt]|ll|ve|re)"
    r"|(?:[^\r\n\w]|_)?[^\W\d_]+"
    r"|\d{1,3}"
    r"| ?(?:[^\s\w]|_)+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+",
    re.IGNORECASE,
)
CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
# Hangul Jamo, CJK radicals to unified ideographs (kana included), Hangul syllables,
# compatibility ideographs, full-width forms. (Ranges, not a regex: it compiles slowly.)
CJK_RANGES = (
    (0x1100, 0x11FF),
    (0x2E80, 0x9FFF),
    (0xAC00, 0xD7AF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
)

CJK_COST = 1.1  # per character: cl100k spends 0.9-1.5 (rarer characters more), Qwen less
# Chat templates wrap each message in a few marker tokens, and the reply is primed with some.
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in CJK_RANGES)


def _part_cost(length: int) -> float:
    # Words up to eight letters are mostly one token; longer ones split every few letters.
    return 1.0 if length <= 8 else 1.0 + (length - 8) / 5


def _word_cost(word: str) -> float:
    core = word if word[0].isalpha() else word[1:]
    if not core.isascii():
        cjk = sum(1 for ch in core if _is_cjk(ch))
        rest = len(core) - cjk
        return cjk * CJK_COST + (1 + rest / 2.7 if rest else 0)
    if core.islower() or core.istitle() or core.isupper():
        return _part_cost(len(core))
    humps = CAMEL.findall(core)  # camelCase and random strings split at each hump, and more
    return sum(_part_cost(len(h)) for h in humps) + 0.3 * (len(humps) - 1)


def _piece_cost(piece: str) -> float:
    first = piece[0]
    if first.isalpha() or (len(piece) > 1 and piece[1].isalpha()):
        return _word_cost(piece)
    if first.isdigit() or piece.isspace():
        return 1.0
    length = len(piece.strip(" "))
    cost = 1.0 if length <= 3 else 1.0 + (length - 3) / 2
    return cost if piece.isascii() else cost + sum(not c.isascii() for c in piece)


#: Texts up to this many characters are remembered as they are (1,024 of them, some
#: 16 MB at most); longer ones by a digest, so a remembered count does not hold its text.
#: Holding them whole, a gateway kept the last 1,024 messages its clients sent however
#: long: 100 distinct 1 MB messages held 100 MB for good (8 GB at serve.max_body_bytes).
CACHED_TEXT_CHARS = 4096
_LONG_COUNTS: Recent[bytes, int] = Recent(256)
_LONG_LOCK = threading.Lock()


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is for a modern BPE tokenizer.

    A conversation re-sends the same messages, so each is counted once: long ones (an
    attached file, a pasted log) are the ones worth it, hashing being far cheaper.
    """
    if len(text) <= CACHED_TEXT_CHARS:
        return _estimate_short(text)
    import hashlib  # only for long texts

    key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    count = _LONG_COUNTS.get(key)
    if count is None:
        count = _count(text)
        with _LONG_LOCK:  # Recent drops its oldest key in two steps
            _LONG_COUNTS[key] = count
    return count


@lru_cache(maxsize=1024)
def _estimate_short(text: str) -> int:
    return _count(text)


def _count(text: str) -> int:
    return round(sum(_piece_cost(p) for p in PIECE.findall(text)))


def estimate_messages(messages: Iterable[Message]) -> int:
    """Tokens for a whole request: contents plus what the chat template adds."""
    total = REQUEST_OVERHEAD
    for message in messages:
        total += estimate_tokens(message.content) + MESSAGE_OVERHEAD
    return total


# A report far from the estimate means something else happened (a cut prompt, a
# cached prefix left out of the count), not a different tokenizer: learn nothing.
LEARN_RANGE = (0.5, 2.5)
# Below this many tokens the chat template's fixed preamble dominates the ratio.
LEARN_MIN_TOKENS = 200
FACTOR_RANGE = (0.5, 3.0)


@dataclass
class Calibration:
    """Per-model correction factors, learned from the prompt counts providers report.

    A model's factor is 1 until a provider reports a count; the first report sets
    it to ``reported / estimated``, and each later one moves it part of the way
    (an exponential average, so one odd request does not swing it).
    """

    weight: float = 0.5
    factors: dict[str, float] = field(default_factory=Recent)  # bounded: recent.py

    def factor(self, model: str) -> float:
        return self.factors.get(model, 1.0)

    def adjust(self, model: str, estimate: int) -> int:
        """The estimate, corrected for ``model``."""
        return round(estimate * self.factor(model))

    def observe(self, model: str, estimate: int, reported: int | None) -> bool:
        """Learn from one request; returns whether the report was plausible enough to use."""
        if not reported or estimate < LEARN_MIN_TOKENS:
            return False
        ratio = reported / estimate
        if not LEARN_RANGE[0] <= ratio <= LEARN_RANGE[1]:
            return False
        old = self.factors.get(model)
        new = ratio if old is None else old + self.weight * (ratio - old)
        self.factors[model] = min(max(new, FACTOR_RANGE[0]), FACTOR_RANGE[1])
        return True

    def raise_to(self, model: str, factor: float) -> None:
        """Make ``model``'s factor at least ``factor`` (a server's own count of a prompt
        it refused: believed over the running average, within the usual bounds)."""
        self.factors[model] = min(max(self.factor(model), factor), FACTOR_RANGE[1])

    def widen(self, model: str, scale: float) -> None:
        """Make future estimates for ``model`` larger (after a prompt that did not fit)."""
        self.factors[model] = min(self.factor(model) * scale, FACTOR_RANGE[1])
