"""Tests for the terminal view of cortan.render.terminal: no spinner on a fast server, the
renderer loaded while the request is in flight, and an answer's first plain words shown
before it is (issue 21, the first visible byte)."""

from __future__ import annotations

import asyncio
import io
import threading

import pyte
import pytest
from rich.console import Console

from cortan.core.events import ChatFinished, ChatPrepared, ChatStarted, TokenDelta
from cortan.core.requests import ChatRequest
from cortan.render.terminal import MarkdownView, Renderer
from tests.render.tty import Tty

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


def tty_console(terminal: Tty) -> Console:
    return Console(
        file=terminal.file, width=60, height=20, color_system="standard",
        force_terminal=True, force_interactive=True,
    )  # fmt: skip


def screen_of(written: str) -> list[str]:
    screen = pyte.Screen(60, 20)
    screen.set_mode(pyte.modes.LNM)  # "\n" as a tty with onlcr turns it
    pyte.Stream(screen).feed(written)
    return [line.rstrip() for line in screen.display]


def shown_when_ready(terminal: Tty, pieces: list[str]) -> list[str]:
    """The screen the same answer leaves when the renderer was ready at its first piece."""
    terminal.read()
    view = MarkdownView(tty_console(terminal), code_theme="monokai", lead=terminal.file)
    for piece in pieces:
        view.on_delta(TokenDelta(1, piece))
    view.on_ended(finished("".join(pieces)))
    return screen_of(terminal.read())


class Held:
    """A console factory that waits for `release`: the renderer still loading."""

    def __init__(self, terminal: Tty) -> None:
        self.terminal = terminal
        self.gate = threading.Event()

    def __call__(self) -> Console:
        assert self.gate.wait(5)
        return tty_console(self.terminal)

    def release(self) -> None:
        self.gate.set()


async def test_first_plain_words_show_before_the_renderer_is_loaded(tty: Tty) -> None:
    held = Held(tty)
    view = MarkdownView(held, code_theme="monokai", lead=tty.file)
    view.on_waiting(prepared())
    view.on_delta(TokenDelta(1, "Sure, here"))
    assert tty.read() == "Sure, here"  # on the terminal, rich still loading
    view.on_delta(TokenDelta(1, " is how"))
    assert tty.read() == " is how"
    held.release()
    pieces = ["Sure, here", " is how", ":\n\n", "- **one**\n", "- `two`\n"]
    for piece in pieces[2:]:
        view.on_delta(TokenDelta(1, piece))
    view.on_ended(finished("".join(pieces)))
    written = "Sure, here is how" + tty.read()
    assert written.count("Sure, here is how") == 1  # not written again
    assert screen_of(written) == shown_when_ready(tty, pieces)


async def test_markdown_waits_for_the_renderer_and_is_never_shown_raw(tty: Tty) -> None:
    held = Held(tty)
    view = MarkdownView(held, code_theme="monokai", lead=tty.file)
    view.on_waiting(prepared())
    view.on_delta(TokenDelta(1, "Some"))
    threading.Timer(0.05, held.release).start()  # `on_delta` below waits for it
    view.on_delta(TokenDelta(1, " **bold** words"))
    view.on_ended(finished("Some **bold** words"))
    written = tty.read()
    assert written.startswith("Some")
    assert "*" not in written
    assert screen_of(written) == shown_when_ready(tty, ["Some", " **bold** words"])


async def test_an_answer_that_ends_while_it_leads_is_rendered_in_place(tty: Tty) -> None:
    held = Held(tty)
    view = MarkdownView(held, code_theme="monokai", lead=tty.file, spinner_delay=0.0)
    view.on_waiting(prepared())
    view.on_delta(TokenDelta(1, "Hello, world!"))
    await asyncio.sleep(0.02)  # past the spinner's delay: it was cancelled by the answer
    held.release()
    view.on_ended(finished("Hello, world!"))
    written = tty.read()
    assert written.count("Hello, world!") == 1
    assert SPINNER not in written
    assert screen_of(written) == shown_when_ready(tty, ["Hello, world!"])


def test_no_lead_once_the_renderer_is_loaded(tty: Tty) -> None:
    view = MarkdownView(tty_console(tty), code_theme="monokai", lead=tty.file)
    view.on_delta(TokenDelta(1, "Hello"))
    assert tty.read().startswith("\x1b[?2026h")  # the live region drew it, not the lead
    view.on_ended(finished("Hello"))
