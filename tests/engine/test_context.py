"""Fitting a conversation to a window: which messages go, which always stay, what is said.

Sizes are built from words the estimate counts exactly (``" ".join(["word"] * n)``
is n tokens), so every case has a clear margin either side of the window and the
expected messages can be written down.
"""

from __future__ import annotations

import pytest

from cortan.config.load import load_settings
from cortan.core.errors import InputError
from cortan.core.messages import Message
from cortan.core.requests import ChatRequest, TextAttachment
from cortan.engine.budget import Budget, fit, get_num_ctx, split_turns
from cortan.engine.context import ContextManager, is_cut
from cortan.engine.guard import Checked
from cortan.engine.tokens import MESSAGE_OVERHEAD, estimate_tokens

LAST_FOUR = ["q2", "a2", "q3", "a3", "q4", "a4", "q5", "a5"]  # of six turns


def words(n: int, word: str = "word") -> str:
    return " ".join([word] * n)


def count(message: Message) -> float:
    return estimate_tokens(message.content) + MESSAGE_OVERHEAD


def budget(limit: int, reserve: int = 0, window: int | None = None) -> Budget:
    return Budget("ollama:m", window or limit, "server", limit, reserve, window_option="num_ctx")


def conversation(turns: int, size: int = 100) -> list[Message]:
    """Turn i asks ``q<i>`` and gets ``a<i>``, each about ``size`` tokens."""
    history: list[Message] = []
    for i in range(turns):
        history.append(Message("user", f"q{i} " + words(size)))
        history.append(Message("assistant", f"a{i} " + words(size)))
    return history


def labels(messages: tuple[Message, ...]) -> list[str]:
    return [m.content.split(" ", 1)[0] for m in messages]


# -- fit: pure --------------------------------------------------------------------------


def test_everything_fits() -> None:
    messages = [Message("system", "sys"), *conversation(3), Message("user", "now")]
    fitted = fit(messages, budget(10_000), count)
    assert fitted.messages == tuple(messages)
    assert fitted.dropped == 0


def test_oldest_turns_go_first_and_whole() -> None:
    # Each turn is 2 x 106 tokens, 233 with the 10% margin: 1000 holds four.
    messages = [Message("system", "sys"), *conversation(6), Message("user", "now")]
    fitted = fit(messages, budget(1000), count)
    assert labels(fitted.messages) == ["sys", *LAST_FOUR, "now"]
    assert fitted.dropped == 2
    assert fitted.tokens <= 1000


def test_system_and_newest_stay_when_no_turn_fits() -> None:
    messages = [Message("system", "sys"), *conversation(3), Message("user", "now " + words(100))]
    fitted = fit(messages, budget(200), count)
    assert labels(fitted.messages) == ["sys", "now"]
    assert fitted.dropped == 3


def test_the_answer_reserve_is_kept_free() -> None:
    messages = [*conversation(2), Message("user", "now")]
    assert fit(messages, budget(600), count).dropped == 0
    assert fit(messages, budget(600, reserve=200), count).dropped == 1


def test_a_newest_message_larger_than_the_window_is_refused() -> None:
    messages = [Message("system", "sys"), Message("user", words(3000))]
    with pytest.raises(InputError) as caught:
        fit(messages, budget(2048, reserve=512), count)
    assert str(caught.value) == (
        "the message is about 3310 tokens, more than the 1536 that fit in the 2048-token "
        "window with 512 kept for the answer: shorten it or attach less"
    )


def test_a_system_prompt_too_large_with_the_message_is_refused() -> None:
    messages = [Message("system", words(1500)), Message("user", words(600))]
    with pytest.raises(InputError, match="more than the 2048 that fit"):
        fit(messages, budget(2048), count)


def test_turns_and_pinned_messages() -> None:
    messages = [
        Message("assistant", "greeting"),
        Message("user", "q0"),
        Message("assistant", "a0"),
        Message("assistant", "a0 again"),
        Message("system", "switched role"),
        Message("assistant", "after the switch"),
        Message("user", "q1"),
        Message("user", "newest"),
    ]
    assert split_turns(messages) == [
        (False, [0]),
        (False, [1, 2, 3]),
        (True, [4]),
        (False, [5]),
        (False, [6]),
        (True, [7]),
    ]


def test_num_ctx_doubles_from_the_floor_within_the_limit() -> None:
    big = budget(32768, reserve=1024, window=131072)
    assert get_num_ctx(100, big, floor=4096) == 4096
    assert get_num_ctx(3072, big, floor=4096) == 4096
    assert get_num_ctx(3073, big, floor=4096) == 8192
    assert get_num_ctx(20000, big, floor=4096) == 32768
    assert get_num_ctx(100, big, floor=4096, sticky=16384) == 16384  # never shrinks in a run
    assert get_num_ctx(100, budget(2048), floor=4096) == 2048  # never past the model's window


def test_budget_names_the_cap_when_it_binds() -> None:
    assert budget(32768, window=131072).describe() == (
        "the 32768-token limit (context.ollama_num_ctx_max)"
    )
    assert budget(8192).describe() == "the 8192-token window"


def test_cut_needs_a_real_prompt_and_a_clear_shortfall() -> None:
    assert is_cut(reported=100, expected=1000, estimate=1000)
    assert not is_cut(reported=700, expected=1000, estimate=1000)
    assert not is_cut(reported=7, expected=150, estimate=150)


# -- the context stage, with a configured window --------------------------------------


def make_manager(**context: object) -> ContextManager:
    settings = load_settings(context=context)
    return ContextManager(system="sys", settings=settings)


def checked(prompt: str, history: list[Message], *attachments: TextAttachment) -> Checked:
    return Checked(ChatRequest(1, prompt, history=tuple(history)), prompt, attachments)


async def test_trimmed_request_comes_with_a_notice() -> None:
    manager = make_manager(window=1024, answer_reserve=0)
    fitted = await manager.fit(checked("now", conversation(6)), None)
    assert fitted.dropped == "2 earlier turns left out to fit the 1024-token window"
    assert labels(fitted.messages) == ["sys", *LAST_FOUR, "now"]
    assert dict(fitted.options) == {}  # no num_ctx: not a provider that takes one


async def test_attachments_of_the_newest_turn_stay() -> None:
    manager = make_manager(window=1024, answer_reserve=0)
    notes = TextAttachment("File notes.txt", words(500, "note") + "\n")
    fitted = await manager.fit(checked("summarise", conversation(6), notes), None)
    assert labels(fitted.messages) == ["sys", "q5", "a5", "File"]
    assert fitted.messages[-1].content == (
        f"File notes.txt:\n```\n{words(500, 'note')}\n```\n\nsummarise"
    )


async def test_an_oversized_message_fails_as_rejected_input() -> None:
    manager = make_manager(window=1024)
    with pytest.raises(InputError) as refused:
        await manager.fit(checked(words(5000), conversation(2)), None)
    assert (refused.value.kind, refused.value.exit_code) == ("input", 1)
    assert str(refused.value).startswith("the message is about 5510 tokens, more than the 512 ")


async def test_usage_of_a_conversation() -> None:
    manager = make_manager(window=4096, answer_reserve=1024)
    usage = await manager.measure(None, conversation(2))
    assert usage.used == 3 + (1 + 4) + 4 * (102 + 4)  # request, system, four messages
    assert (usage.window, usage.limit, usage.reserve) == (4096, 4096, 1024)
    assert usage.left == 4096 - 1024 - usage.used
