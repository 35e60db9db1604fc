"""Answer views: how one answer reaches stdout in each output mode.

Each view gets the answer's events (the composition root subscribes it to the bus as
an essential observer: when it cannot write, the request fails visibly with the
partial kept) and writes to stdout only; diagnostics go to
:mod:`cortan.render.diagnostics`.

* ``MarkdownView`` (in :mod:`cortan.render.terminal`): a terminal. A spinner while
  no token has come (not on a fast server), then rendered markdown, block by block.
* ``PlainView``: a pipe or file. Text as it arrives, flushed per piece.
* ``BufferedView``: ``--no-stream``. The whole answer once, when it is complete.
* ``ExtractView``: ``-x`` / ``--xl``. Only a fenced code block of the answer, plain.
* ``JsonView``: ``--json``. One JSON object when the answer ends.
* ``DocumentView``: ``--schema``. The answer's JSON document, once it fits the schema.

A model's reasoning (``ThinkingDelta``) reaches only the views that show it, never
stdout when it is a pipe or a file (render/thinking.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from cortan.core.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ChatPrepared,
    ChatStarted,
    ThinkingDelta,
    TokenDelta,
    ToolCalled,
)
from cortan.render.plain import PlainWriter, reader_gone
from cortan.render.report import dump_json, write_report
from cortan.render.sanitize import sanitize
from cortan.render.thinking import ThinkingStream

if TYPE_CHECKING:
    from rich.console import Console


class AnswerView(Protocol):
    """Receives one answer's events, in order."""

    def on_waiting(self, event: ChatPrepared) -> None: ...

    def on_started(self, event: ChatStarted) -> None: ...

    def on_delta(self, event: TokenDelta) -> None: ...

    def on_thinking(self, event: ThinkingDelta) -> None: ...

    def on_tool(self, event: ToolCalled) -> None: ...

    def on_ended(self, event: ChatEnded) -> None: ...


class SkipQuiet:
    """``view`` for every request but those marked ``quiet``, which go to ``aside``.

    A front end that shares one view with requests it shows its own way (the REPL and
    its ``/run``) wraps the view in this. Only ``ChatPrepared`` carries the request, so
    the quiet ones are known by id from then until their ending. ``aside`` sees them
    instead (by default it shows nothing): command mode's proposal is drawn by its
    dialogue, yet a thinking model's reasoning is still the only sign it is at work.
    """

    def __init__(self, view: AnswerView, aside: AnswerView | None = None) -> None:
        self._view = view
        self._aside: AnswerView = aside or QuietView()
        self._quiet: set[int] = set()

    def _for(self, request_id: int) -> AnswerView:
        return self._aside if request_id in self._quiet else self._view

    def on_waiting(self, event: ChatPrepared) -> None:
        if event.request.quiet:
            self._quiet.add(event.request.request_id)
        self._for(event.request.request_id).on_waiting(event)

    def on_started(self, event: ChatStarted) -> None:
        self._for(event.request_id).on_started(event)

    def on_delta(self, event: TokenDelta) -> None:
        self._for(event.request_id).on_delta(event)

    def on_thinking(self, event: ThinkingDelta) -> None:
        self._for(event.request_id).on_thinking(event)

    def on_tool(self, event: ToolCalled) -> None:
        self._for(event.request_id).on_tool(event)

    def on_ended(self, event: ChatEnded) -> None:
        view = self._for(event.request_id)
        self._quiet.discard(event.request_id)
        view.on_ended(event)


class QuietView:
    """A view that ignores every event; the views below override what they show."""

    def on_waiting(self, event: ChatPrepared) -> None:
        pass

    def on_started(self, event: ChatStarted) -> None:
        pass

    def on_delta(self, event: TokenDelta) -> None:
        pass

    def on_thinking(self, event: ThinkingDelta) -> None:
        pass

    def on_tool(self, event: ToolCalled) -> None:
        pass

    def on_ended(self, event: ChatEnded) -> None:
        pass


def ending_note(event: ChatEnded) -> str | None:
    """The dim remark shown under a partial answer."""
    if isinstance(event, ChatCancelled):
        return "[interrupted]" if event.content else None
    if isinstance(event, ChatFailed) and event.content:
        return "[answer incomplete: the request failed]"
    return None


class PlainView(QuietView):
    """The answer to a pipe or a file, plain, flushed piece by piece."""

    def __init__(self, file: TextIO, *, raw: bool = False) -> None:
        self._writer = PlainWriter(file, raw=raw)

    @property
    def closed(self) -> bool:
        """The reader went away; the request was stopped."""
        return self._writer.closed

    def on_delta(self, event: TokenDelta) -> None:
        self._writer.write(event.text)

    def on_ended(self, event: ChatEnded) -> None:
        self._writer.end()


class ThinkingAside:
    """``view``, with the model's reasoning streamed dim to ``thinking`` (a terminal's
    stderr) and closed by its summary when the answer, a tool call or the end comes.

    Every ``ask`` view that writes the answer somewhere other than a live markdown
    region takes its reasoning this way: a plain pipe, ``-x``, ``--schema`` and
    ``--no-stream`` would otherwise leave a thinking model's terminal blank for as
    long as it thinks.
    """

    def __init__(self, view: AnswerView, thinking: Console | Callable[[], Console]) -> None:
        self._view = view
        self._thinking = ThinkingStream(thinking)

    def on_waiting(self, event: ChatPrepared) -> None:
        self._view.on_waiting(event)

    def on_started(self, event: ChatStarted) -> None:
        self._view.on_started(event)

    def on_delta(self, event: TokenDelta) -> None:
        if self._thinking.active:
            self._thinking.close()
        self._view.on_delta(event)

    def on_thinking(self, event: ThinkingDelta) -> None:
        self._thinking.feed(event.text)

    def on_tool(self, event: ToolCalled) -> None:
        self._thinking.close()
        self._view.on_tool(event)

    def on_ended(self, event: ChatEnded) -> None:
        self._thinking.close()
        self._view.on_ended(event)


class BufferedView(QuietView):
    """Writes the answer once, complete; a failed or interrupted one still shows what came."""

    def __init__(
        self, console: Console | None, file: TextIO, *, code_theme: str, raw: bool = False
    ) -> None:
        self._console = console
        self._file = file
        self._code_theme = code_theme
        self._raw = raw

    def on_ended(self, event: ChatEnded) -> None:
        if not event.content:
            return
        if self._console is None:
            writer = PlainWriter(self._file, raw=self._raw)
            writer.write(event.content)
            writer.end()
            return
        from cortan.render.markdown import MarkdownStream

        stream = MarkdownStream(self._console, code_theme=self._code_theme)
        stream.feed(event.content)
        stream.abort(ending_note(event))


class ExtractView(QuietView):
    """``-x``: only the first fenced code block, plain, the moment it closes (``--xl``:
    the last, when the answer ends). An answer with no code block is written whole, as
    llm's ``-x`` does: a script gets what the model said rather than nothing.

    Plain on a terminal too (sanitised: no markup, no colour), so that what shows is
    what a pipe would get. See :mod:`cortan.render.extract` for what counts as a block.
    """

    def __init__(self, file: TextIO, *, last: bool = False, raw: bool = False) -> None:
        from cortan.render.extract import CodeBlocks

        self._writer = PlainWriter(file, raw=raw)
        self._blocks = CodeBlocks()
        self._last = last
        self._fed = False
        self._written = False

    def on_delta(self, event: TokenDelta) -> None:
        self._fed = True
        closed = self._blocks.feed(event.text)
        if closed and not self._last and not self._written:
            self._write(closed[0])

    def on_ended(self, event: ChatEnded) -> None:
        if self._written:
            return
        if not self._fed:  # nothing streamed (an answer from the cache, say)
            self._blocks.feed(event.content)
        self._blocks.end()
        blocks = self._blocks.blocks
        if blocks:
            self._write(blocks[-1] if self._last else blocks[0])
        elif event.content:
            self._write(event.content)

    def _write(self, text: str) -> None:
        self._written = True
        self._writer.write(text)
        self._writer.end()


class JsonView(QuietView):
    """One JSON object per answer; ``extra`` adds the front end's keys, read at the end.

    ``extract`` ("first" or "last", for ``-x`` / ``--xl``) adds ``code``: that fenced
    code block's content, or null when the answer has none.
    """

    def __init__(
        self,
        file: TextIO,
        extra: Callable[[], Mapping[str, Any]] | None = None,
        *,
        extract: str | None = None,
    ) -> None:
        self._file = file
        self._extra = extra
        self._extract = extract

    def on_ended(self, event: ChatEnded) -> None:
        keys = dict(self._extra()) if self._extra else {}
        if self._extract is not None:
            from cortan.render.extract import extract_code

            keys["code"] = extract_code(event.content, last=self._extract == "last")
        try:
            write_report(self._file, event, keys)
        except BrokenPipeError:
            raise reader_gone(self._file) from None


class DocumentView(QuietView):
    """``--schema``: stdout gets exactly one JSON document, the answer that fits.

    An answer that does not fit (after its one repair) goes to stderr as it came, so
    the script reading stdout never parses half a document.
    """

    def __init__(self, file: TextIO, errors: TextIO | None = None) -> None:
        self._file = file
        self._errors = errors

    def on_ended(self, event: ChatEnded) -> None:
        try:
            if isinstance(event, ChatFinished) and event.data is not None:
                self._file.write(dump_json(event.data, indent=2) + "\n")
                self._file.flush()
            elif isinstance(event, ChatFailed) and event.kind == "schema" and self._errors:
                self._errors.write(sanitize(event.content) + "\n")
                self._errors.flush()
        except BrokenPipeError:
            raise reader_gone(self._file) from None
