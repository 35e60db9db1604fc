"""The token estimate against real tokenizer counts, and calibration from reported counts."""

from __future__ import annotations

import time

import pytest

from cortan.core.messages import Message
from cortan.engine.tokens import (
    LEARN_MIN_TOKENS,
    MESSAGE_OVERHEAD,
    REQUEST_OVERHEAD,
    Calibration,
    estimate_messages,
    estimate_tokens,
)

PROSE = (
    "The context manager keeps each conversation within the model's context window: the "
    "limit comes from the provider where it says, else from config, else a safe default. "
    "Token counts are estimated locally without a network, calibrated by the counts the "
    "provider reports back."
)
CODE = (
    "def read_attachment(path: Path, *, max_bytes: int, used: int = 0) -> Attachment:\n"
    '    """Read ``path`` as a text attachment."""\n'
    "    room = max(max_bytes - used, 0)\n"
    "    size = _stat_size(path)\n"
    "    if size is not None and size > room:\n"
    "        raise _too_large(path, size, max_bytes, used)\n"
    '    return Attachment(f"File {path}", path.read_bytes())\n'
)
JSON = (
    '{"model": "llama3.2:latest", "created_at": "2025-01-15T10:30:00.123456Z", "message": '
    '{"role": "assistant", "content": "Hello"}, "done": false, "prompt_eval_count": 26, '
    '"eval_duration": 4709213000}'
)
CHINESE = (
    "上下文管理器让每段对话都保持在模型的上下文窗口之内：限制来自提供者，其次来自配置，"
    "最后是一个安全的默认值。"
)


# Counts from OpenAI's cl100k_base tokenizer (tiktoken), taken once offline.
@pytest.mark.parametrize(
    ("text", "real"),
    [(PROSE, 50), (CODE, 92), (JSON, 72), (CHINESE, 51)],
    ids=["prose", "code", "json", "chinese"],
)
def test_estimate_is_close_to_a_real_tokenizer(text: str, real: int) -> None:
    assert abs(estimate_tokens(text) - real) <= 0.15 * real


def test_small_cases() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello") == 1
    assert estimate_tokens(" ".join(["word"] * 100)) == 100
    assert estimate_tokens("1234567") == 3  # digits go in groups of three
    assert estimate_tokens("getHTTPResponseCode") > estimate_tokens("response")


def test_messages_add_the_template_overhead() -> None:
    messages = [Message("system", "hello"), Message("user", "hello")]
    assert estimate_messages(messages) == REQUEST_OVERHEAD + 2 * (1 + MESSAGE_OVERHEAD)


def test_a_megabyte_is_estimated_quickly() -> None:
    text = (PROSE + "\n" + CODE) * (1_048_576 // (len(PROSE) + len(CODE)))
    start = time.perf_counter()
    count = estimate_tokens(text + "x")
    assert time.perf_counter() - start < 2.0
    assert 200_000 < count < 300_000


def test_calibration_learns_a_factor_per_model() -> None:
    calibration = Calibration()
    assert calibration.adjust("ollama:a", 1000) == 1000
    assert calibration.observe("ollama:a", 1000, 1200)
    assert calibration.factor("ollama:a") == pytest.approx(1.2)
    assert calibration.adjust("ollama:a", 1000) == 1200
    assert calibration.factor("ollama:b") == 1.0
    assert calibration.observe("ollama:a", 1000, 1000)  # moves halfway
    assert calibration.factor("ollama:a") == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("estimate", "reported"),
    [
        (LEARN_MIN_TOKENS - 1, 400),  # too small: the template's own tokens dominate
        (1000, None),  # the provider did not say
        (1000, 0),
        (1000, 100),  # far below: a cut prompt or a cached prefix, not a tokenizer
        (1000, 5000),
    ],
)
def test_calibration_ignores_what_says_nothing_of_the_tokenizer(
    estimate: int, reported: int | None
) -> None:
    calibration = Calibration()
    assert not calibration.observe("m", estimate, reported)
    assert calibration.factor("m") == 1.0


def test_widen_is_bounded() -> None:
    calibration = Calibration()
    for _ in range(10):
        calibration.widen("m", 1.5)
    assert calibration.factor("m") == 3.0
