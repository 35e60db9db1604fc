"""Tests for the terminal view of cortan.render.views: no spinner on a fast server, and
the renderer loaded while the request is in flight (issue 21, the first visible byte)."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest
from rich.console import Console

from cortan.core.events import ChatFinished, ChatPrepared, ChatStarted, TokenDelta
from cortan.core.requests import ChatRequest
from cortan.render.views import MarkdownView, Renderer

SPINNER = "⠋"  # the first frame of rich's "dots"


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Console:
    monkeypatch.setenv("TERM", "xterm-256color")
    return Console(
        file=io.StringIO(), width=60, height=20, color_system=None,
        force_terminal=True, force_interactive=True,
    )  # fmt: skip


def written(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def prepared() -> ChatPrepared:
    return ChatPrepared(ChatRequest(1, "hi"), "ollama:m", ())


def finished(text: str) -> ChatFinished:
    return ChatFinished(1, "ollama", "m", text, "stop")


async def test_a_fast_answer_draws_no_spinner(console: Console) -> None:
    view = MarkdownView(lambda: console, code_theme="monokai", spinner_delay=0.5)
    view.on_waiting(prepared())
    view.on_started(ChatStarted(1, "ollama", "m"))
    view.on_delta(TokenDelta(1, "Hello"))
    view.on_ended(finished("Hello"))
    assert SPINNER not in written(console)
    assert "Hello" in written(console)


async def test_a_silent_model_gets_the_spinner_after_the_delay(console: Console) -> None:
    view = MarkdownView(console, code_theme="monokai", spinner_delay=0.01)
    view.on_waiting(prepared())
    view.on_started(ChatStarted(1, "ollama", "late-model"))
    for _ in range(500):  # the loop runs the timer; rich's own thread draws the frames
        await asyncio.sleep(0.01)
        if "late-model" in written(console):
            break
    assert "late-model" in written(console)
    view.on_delta(TokenDelta(1, "Hi"))
    view.on_ended(finished("Hi"))
    out = written(console)
    assert out.index("Hi") > out.rindex("late-model")  # the spinner went before the answer


def test_the_renderer_loads_in_a_thread_and_get_joins_it() -> None:
    made: list[str] = []
    gate = threading.Event()

    def make() -> Console:
        made.append(threading.current_thread().name)
        gate.wait(5)
        return Console(file=io.StringIO())

    renderer = Renderer(make)
    renderer.start()
    gate.set()
    console = renderer.get()
    assert made == ["cortan-renderer"]
    assert renderer.get() is console


def test_a_renderer_that_fails_in_its_thread_fails_again_in_the_caller() -> None:
    calls: list[str] = []

    def make() -> Console:
        calls.append(threading.current_thread().name)
        raise OSError("no terminal")

    renderer = Renderer(make)
    renderer.start()
    with pytest.raises(OSError, match="no terminal"):
        renderer.get()
    assert calls == ["cortan-renderer", threading.current_thread().name]
