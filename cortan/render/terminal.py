"""The answer view of a terminal: a spinner, then rendered markdown, block by block.

Layer: render. ``MarkdownView`` is what ``cortan ask`` shows on a terminal, and what
the REPL and command mode show: a spinner while no token has come (not on a fast
server), then the answer through :class:`cortan.render.markdown.MarkdownStream`; a
model's reasoning streamed dim to stderr or folded under the spinner. rich and the
markdown stack are imported in a thread while the request is on its way
(:class:`Renderer`), and the answer's first plain words may go out before they are
in (:mod:`cortan.render.lead`). ``WaitOnly`` shows the wait alone, for command mode,
whose dialogue draws the answer. The views for pipes, files and the other output
modes, and the ``AnswerView`` protocol, are in :mod:`cortan.render.views`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from cortan.core.events import (
    ChatCancelled,
    ChatEnded,
    ChatPrepared,
    ChatStarted,
    ThinkingDelta,
    TokenDelta,
    ToolCalled,
)
from cortan.render.sanitize import sanitize
from cortan.render.thinking import ThinkingStream, Thought
from cortan.render.views import QuietView, ending_note

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from cortan.render.lead import Lead
    from cortan.render.markdown import MarkdownStream

#: Seconds with no answer before the spinner shows: on a fast server the first token
#: would erase it in the frame that drew it (issue 21).
SPINNER_DELAY = 0.15
STATUS_LEAD = "⠋ thinking · "  # what comes before a thought's tail under the spinner


class Renderer:
    """The markdown renderer's modules and the console, loaded in a thread of their own.

    `start` runs as the request goes out (rich.markdown, markdown-it and pygments take
    about 40 ms to import, rich's console 25 more); `get` joins it at the first token,
    so that the import overlaps the wait for the model instead of following it. Loading
    fails in the thread only as it would in the caller: `get` then does it again there,
    where the error surfaces as usual.
    """

    def __init__(self, make_console: Callable[[], Console]) -> None:
        self._make_console = make_console
        self._console: Console | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self._console is None:
            self._thread = threading.Thread(
                target=self._load_quietly, name="cortan-renderer", daemon=True
            )
            self._thread.start()

    def get(self) -> Console:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._console is None:
            self._console = self._load()
        return self._console

    def _load(self) -> Console:
        import cortan.render.markdown  # noqa: F401  (the point: import it now)

        return self._make_console()

    @property
    def loading(self) -> bool:
        """Started and not done yet: `get` would wait."""
        return self._thread is not None and self._thread.is_alive()

    def _load_quietly(self) -> None:
        with contextlib.suppress(Exception):  # `get` loads again in the caller, and raises there
            self._console = self._load()


class MarkdownView(QuietView):
    """Rendered markdown on a terminal, with a spinner while the model is silent.

    A model's reasoning goes to ``thinking`` (stderr, for ``ask``) streamed dim, or,
    with ``fold`` (the REPL, command mode), shows its last lines under the spinner
    (unless ``tail`` is off: ``show_thinking = false``) and leaves one line in the
    scrollback, followed by ``hint``; with neither, the spinner just says it is thinking.

    ``console`` may be a factory: ``ask`` makes its console only once the request is
    on its way (:class:`Renderer`). The spinner waits ``spinner_delay`` seconds.

    ``lead``, the file a factory's console will write to: the first words of an answer
    that arrive while the renderer still loads are written there plain, if they are
    (:mod:`cortan.render.lead`), and the markdown stream starts from them. Give it
    only when that console draws a live region (`cortan.render.lead.writes_live`).
    """

    def __init__(
        self,
        console: Console | Callable[[], Console],
        *,
        code_theme: str,
        thinking: Console | Callable[[], Console] | None = None,
        fold: bool = False,
        tail: bool = True,
        hint: str = "",
        spinner_delay: float = SPINNER_DELAY,
        lead: TextIO | None = None,
    ) -> None:
        self._renderer = Renderer(console if callable(console) else lambda: console)
        self._lead_file = lead
        self._lead: Lead | None = None  # this answer's, while it leads
        self._spinner_delay = spinner_delay
        self._spinner_timer: asyncio.TimerHandle | None = None
        self._label = ""
        self._code_theme = code_theme
        self._status: Status | None = None
        self._stream: MarkdownStream | None = None
        self._thinking = ThinkingStream(thinking) if thinking is not None else None
        self._fold = fold
        self._tail = fold and tail
        self._hint = hint
        self._thought = Thought()

    def on_thinking(self, event: ThinkingDelta) -> None:
        if self._lead is not None:  # reasoning after the answer began: no more plain words
            self._begin_stream()
        self._thought.add(event.text)
        if self._thinking is not None:
            self._stop_status()  # its line would fight the reasoning on the same terminal
            self._thinking.feed(event.text)
            return
        tail = ""
        if self._tail:  # the spinner and "thinking · " take the first row's first columns
            width = max(self._renderer.get().width - len(STATUS_LEAD), 20)
            tail = self._thought.tail(width=width)
        self._show_status("thinking" + (f" · {tail}" if tail else "…"))

    def _close_thought(self) -> None:
        summary = self._thought.close()
        if self._thinking is not None:
            self._thinking.close()
        elif summary is not None:
            self._stop_status()
            from rich.text import Text

            self._renderer.get().print(Text(summary + self._hint, style="dim"))

    def on_waiting(self, event: ChatPrepared) -> None:
        self._renderer.start()  # the request goes out now: load the renderer meanwhile
        self._wait_then_show(event.model or "")

    def on_started(self, event: ChatStarted) -> None:
        self._wait_then_show(f"{event.provider}:{event.model}")

    def _wait_then_show(self, label: str) -> None:
        """The spinner, once the model has been silent for ``spinner_delay`` seconds."""
        self._label = label
        if self._status is not None:
            self._show_status(label)
        elif self._spinner_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside a loop: no timer to wait on
                self._show_status(label)
                return
            self._spinner_timer = loop.call_later(self._spinner_delay, self._spinner_due)

    def _spinner_due(self) -> None:
        self._spinner_timer = None
        if self._status is None:  # reasoning may have shown it already
            self._show_status(self._label)

    def _show_status(self, label: str) -> None:
        """The spinner while no token has come: the model asked for, then the one answering."""
        if self._stream is not None or self._lead is not None:
            return
        from rich.text import Text

        # A Text, not markup: a model name from a server may contain "[...]".
        text = Text(sanitize(label) or "waiting for the model", style="dim")
        if self._status is None:
            self._status = self._renderer.get().status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def on_delta(self, event: TokenDelta) -> None:
        if self._stream is not None:
            self._stream.feed(event.text)
            return
        if self._lead is None:  # the answer's first piece
            self._close_thought()
            self._stop_status()
        if not self._lead_ahead(event.text):
            self._begin_stream(event.text)

    def _lead_ahead(self, text: str) -> bool:
        """Whether ``text`` went out plain, ahead of the renderer (issue 21)."""
        if self._lead_file is None or not self._renderer.loading:
            return False
        if self._lead is None:
            from cortan.render.lead import Lead, terminal_width

            self._lead = Lead(self._lead_file, terminal_width(self._lead_file))
        return self._lead.offer(text)

    def _begin_stream(self, text: str = "") -> None:
        """The markdown stream, starting from what the lead wrote, then ``text``.

        One `feed` for both: the stream draws at most every 50 ms, and the piece that
        ended the lead must not wait for the next one to be seen.
        """
        console = self._renderer.get()
        from cortan.render.markdown import MarkdownStream

        shown = self._lead.text if self._lead is not None else ""
        self._lead = None
        self._stream = MarkdownStream(console, code_theme=self._code_theme, shown=shown)
        self._stream.feed(shown + text)

    def on_tool(self, event: ToolCalled) -> None:
        """A tool call: the spinner stops and the words so far are printed whole, so that
        the call's line and the approval question are drawn on a clean screen below them
        (the next round's ``ChatStarted`` brings the spinner back, its words a new block).

        A stream left open here still held words it had not drawn (it draws at most 20
        times a second): the call's line cut into the sentence, its end drawn after it.
        """
        self._close_thought()  # its summary before the call's line, not glued to it
        self._stop_status()
        if self._lead is not None:
            self._begin_stream()
        if self._stream is not None:
            self._stream.finish()
            self._stream = None

    def on_ended(self, event: ChatEnded) -> None:
        self._close_thought()
        self._stop_status()
        self._thought = Thought()
        if self._lead is not None:
            self._begin_stream()
        if self._stream is not None:
            self._stream.abort(ending_note(event))
            self._stream = None
        elif self._fold and isinstance(event, ChatCancelled):
            # Ctrl-C while the model was silent, thinking, or waiting on a tool call's
            # question: without a word the prompt would come back as if that were all.
            from rich.text import Text

            note = "[interrupted]" if event.content else "[interrupted before the answer began]"
            self._renderer.get().print(Text(note, style="dim"))

    def settle(self) -> None:
        """The wait is over with no answer to draw here: the spinner goes, the thought
        folds into its line (:class:`WaitOnly`)."""
        self._close_thought()
        self._stop_status()

    def _stop_status(self) -> None:
        if self._spinner_timer is not None:
            self._spinner_timer.cancel()
            self._spinner_timer = None
        if self._status is not None:
            self._status.stop()
            self._status = None


class WaitOnly(QuietView):
    """What ``view`` shows while a request is on its way (the spinner, the reasoning
    folded), never its answer.

    Command mode's answer is a JSON proposal that its dialogue draws its own way; with
    no view at all, a thinking model left only "asking the model for a command…" on
    the screen for as long as it thought.
    """

    def __init__(self, view: MarkdownView) -> None:
        self._view = view

    def on_waiting(self, event: ChatPrepared) -> None:
        self._view.on_waiting(event)

    def on_started(self, event: ChatStarted) -> None:
        self._view.on_started(event)

    def on_thinking(self, event: ThinkingDelta) -> None:
        self._view.on_thinking(event)

    def on_delta(self, event: TokenDelta) -> None:
        self._view.settle()

    def on_tool(self, event: ToolCalled) -> None:
        self._view.settle()

    def on_ended(self, event: ChatEnded) -> None:
        self._view.settle()
