"""The prompt: history, suggestions, completion, and the keys for multiline input.

Keys beyond prompt-toolkit's Emacs (or vi) defaults:

* Enter sends, unless the text opened a ``\"\"\"`` block that is not closed yet.
* Alt-Enter (or Esc then Enter) inserts a newline.
* Ctrl-C clears the line; on an empty line it interrupts (the shell explains how
  to leave). Ctrl-D on an empty line leaves.
* Ctrl-R searches history, and the keys inside a search work as in readline:
  Enter sends the entry found, Esc, the arrows and Ctrl-A/Ctrl-E leave the search
  with the entry on the line to edit, Ctrl-C or Ctrl-G give back what was typed.
  (The shell's own Enter, Alt-Enter and Ctrl-C stand aside while a search is open:
  unfiltered, they acted on the search field and emptied it, issue 21.)
* Ctrl-Z suspends the shell (``fg`` brings it back with the line as it was).
* Pasted text (bracketed paste) keeps its newlines as text.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession, search
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.filters import is_searching
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.search import SearchDirection
from prompt_toolkit.styles import Style

from cortan.core.errors import CortanError
from cortan.core.files import NotPrivateFile, open_private

#: How much of the history file's end the shell reads: thousands of entries.
MAX_HISTORY_BYTES = 1 << 20

if TYPE_CHECKING:
    from prompt_toolkit.application import Application
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.completion import Completer
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

BLOCK = '"""'
STYLE = Style.from_dict({"prompt": "ansicyan bold", "continuation": "ansibrightblack"})


def in_open_block(text: str) -> bool:
    """True while a ``\"\"\"`` block has been opened and not yet closed."""
    lines = text.split("\n")
    if lines[0].strip() != BLOCK:
        return False
    return not any(line.strip() == BLOCK for line in lines[1:])


def unwrap_block(text: str) -> str:
    """The text inside a closed ``\"\"\"`` block; other text unchanged."""
    lines = text.split("\n")
    if len(lines) >= 2 and lines[0].strip() == BLOCK and lines[-1].strip() == BLOCK:
        return "\n".join(lines[1:-1])
    return text


def make_key_bindings(before_search: LineBeforeSearch) -> KeyBindings:
    bindings = KeyBindings()
    editing = ~is_searching

    @bindings.add("enter", filter=editing)
    def _(event: KeyPressEvent) -> None:
        """Send the line, take the highlighted completion, or go on inside an open block."""
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
        else:
            submit(buffer)

    @bindings.add("escape", "enter", filter=editing)
    def _(event: KeyPressEvent) -> None:
        """Alt-Enter: a newline in the message."""
        event.current_buffer.insert_text("\n")

    @bindings.add("c-c", filter=editing)
    def _(event: KeyPressEvent) -> None:
        """Clear the line; on an empty line, interrupt."""
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt())

    add_search_keys(bindings, before_search)
    add_mouse_guard(bindings)
    return bindings


def add_mouse_guard(bindings: KeyBindings) -> None:
    """Drop what reads as a mouse report but is not one.

    prompt_toolkit takes ``ESC [ digits m`` for a mouse report, so a colour code typed
    or pasted without bracketed paste (``ESC[31m``) stopped the prompt on its own
    traceback and "Press ENTER to continue". Real reports go to its handler as before.
    """
    from prompt_toolkit.key_binding.bindings.mouse import load_mouse_bindings
    from prompt_toolkit.keys import Keys

    (default,) = load_mouse_bindings().get_bindings_for_keys((Keys.Vt100MouseEvent,))

    @bindings.add(Keys.Vt100MouseEvent)
    def _(event: KeyPressEvent) -> object:
        try:
            return default.handler(event)
        except (ValueError, KeyError, IndexError):
            return None


def submit(buffer: Buffer) -> None:
    """Enter on a line: send it, or add a newline inside an open block."""
    if in_open_block(buffer.text):
        buffer.insert_text("\n")
    else:
        buffer.validate_and_handle()


class LineBeforeSearch:
    """The line as it stood before Ctrl-R again moved it.

    Inside a search, Ctrl-R again (the next older match) moves the line itself to that
    entry (prompt-toolkit's ``apply_search``), so leaving with Ctrl-C or Ctrl-G left the
    match there and lost what was typed. The first move of a search remembers the line,
    leaving gives it back, and it is forgotten once no search is open, however the
    search ended (the shell hooks :meth:`forget` to every redraw).
    """

    def __init__(self) -> None:
        self._at: tuple[int, int] | None = None  # working index, cursor

    def remember(self, buffer: Buffer) -> None:
        if self._at is None:
            self._at = (buffer.working_index, buffer.cursor_position)

    def give_back(self, buffer: Buffer) -> None:
        if self._at is not None:
            buffer.working_index, buffer.cursor_position = self._at
        self._at = None

    def forget(self, app: Application[str]) -> None:
        if not app.layout.is_searching:
            self._at = None


def add_search_keys(bindings: KeyBindings, before_search: LineBeforeSearch) -> None:
    """Keys inside a Ctrl-R search, as in readline: the entry found is taken, not lost."""

    @bindings.add("c-r", filter=is_searching)
    @bindings.add("up", filter=is_searching)
    @bindings.add("c-s", filter=is_searching)
    @bindings.add("down", filter=is_searching)
    def _(event: KeyPressEvent) -> None:
        """The next older (Ctrl-R, Up) or newer (Ctrl-S, Down) match, the line kept."""
        target = event.app.layout.search_target_buffer_control
        if target is not None:
            before_search.remember(target.buffer)
        older = event.key_sequence[0].key in (Keys.ControlR, Keys.Up)
        direction = SearchDirection.BACKWARD if older else SearchDirection.FORWARD
        search.do_incremental_search(direction, count=event.arg)

    @bindings.add("c-c", filter=is_searching)
    @bindings.add("c-g", filter=is_searching)
    def _(event: KeyPressEvent) -> None:
        """Leave the search and give back what was on the line before it."""
        search.stop_search()
        before_search.give_back(event.app.current_buffer)

    @bindings.add("enter", filter=is_searching)
    @bindings.add("escape", "enter", filter=is_searching)
    def _(event: KeyPressEvent) -> None:
        """Send the entry found."""
        search.accept_search()
        submit(event.app.current_buffer)

    @bindings.add("right", filter=is_searching)
    @bindings.add("end", filter=is_searching)
    @bindings.add("c-e", filter=is_searching)
    def _(event: KeyPressEvent) -> None:
        """Take the entry found onto the line, the cursor at its end."""
        search.accept_search()
        buffer = event.app.current_buffer
        buffer.cursor_position = len(buffer.text)

    @bindings.add("left", filter=is_searching)
    @bindings.add("home", filter=is_searching)
    @bindings.add("c-a", filter=is_searching)
    def _(event: KeyPressEvent) -> None:
        """Take the entry found onto the line, the cursor at its start."""
        search.accept_search()
        event.app.current_buffer.cursor_position = 0


def make_history(path: Path | None) -> History:
    """History in a file created owner-only, or in memory with ``--no-history``.

    A link or anything but a regular file at ``path`` is refused before it is opened
    (``cortan.core.files``): a planted ``history -> ~/.bashrc`` would get every line.
    """
    if path is None:
        return InMemoryHistory()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(open_private(path, os.O_WRONLY | os.O_CREAT))
    except NotPrivateFile as exc:
        raise history_refused(path, str(exc)) from None
    except OSError as exc:
        raise CortanError(f"cannot open the shell history {path}: {exc.strerror}") from None
    return PrivateFileHistory(path)


def keep_line(history: History) -> None:
    """The line just handled goes to the history file (see :class:`PrivateFileHistory`)."""
    if isinstance(history, PrivateFileHistory):
        history.keep()


def forget_line(history: History) -> None:
    """The line just entered never reaches the history file."""
    if isinstance(history, PrivateFileHistory):
        history.forget()


def history_refused(path: Path, reason: str) -> CortanError:
    return CortanError(
        f"the shell history {path} {reason}: cortan does not follow links or write anything "
        "but its own regular file there; remove it, or start the shell with --no-history"
    )


class PrivateFileHistory(FileHistory):
    """prompt-toolkit's FileHistory, each append opened without following a link.

    The file is checked when the shell starts, and again at every line: a link made
    while the shell runs gets nothing (the line stays in this shell's memory).

    A line reaches the file only once the shell has handled it (:meth:`keep`): a line
    the secret guard stopped and the person chose not to send is forgotten
    (:meth:`forget`), so the key pasted by mistake is not left on disk in the history
    either. It stays in this shell's memory, for Up to recall and edit.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        self._held: str | None = None

    def load_history_strings(self) -> Iterable[str]:
        """The newest entries, from at most the last MAX_HISTORY_BYTES of the file.

        prompt-toolkit reads the whole file, and holds a line with no line end whole:
        a history that grew for years, or a 1 GB file of NULs, took 2 GB of memory and
        half a minute before the shell could recall anything.
        """
        try:
            fd = open_private(self.path, os.O_RDONLY)
        except (NotPrivateFile, OSError):
            return []
        with os.fdopen(fd, "rb") as file:
            start = max(os.fstat(fd).st_size - MAX_HISTORY_BYTES, 0)
            file.seek(start)
            data = file.read(MAX_HISTORY_BYTES)
        if start:  # begin at an entry's first line, not in the middle of one
            found = data.find(b"\n#")  # the line before each entry (store_string's)
            data = data[found + 1 :] if found >= 0 else b""
        return reversed(parse_history(data.decode("utf-8", errors="replace")))

    def store_string(self, string: str) -> None:
        self.keep()
        self._held = string

    def keep(self) -> None:
        """Write the line held back, if any."""
        held, self._held = self._held, None
        if held is not None:
            self._write(held)

    def forget(self) -> None:
        """Drop the line held back: it never reaches the file."""
        self._held = None

    def _write(self, string: str) -> None:
        try:
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except (NotPrivateFile, OSError):
            return
        with os.fdopen(fd, "ab") as file:
            file.write(f"\n# {datetime.datetime.now()}\n".encode())
            for line in string.split("\n"):
                file.write(f"+{line}\n".encode("utf-8", errors="replace"))


def parse_history(text: str) -> list[str]:
    """Entries of a FileHistory file, oldest first: runs of ``+`` lines, as it writes them."""
    entries: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("+"):
            lines.append(line[1:])
        elif lines:
            entries.append("\n".join(lines))
            lines = []
    if lines:
        entries.append("\n".join(lines))
    return entries


def make_prompt_session(
    *,
    completer: Completer,
    history: History,
    vi_mode: bool = False,
    input: Input | None = None,
    output: Output | None = None,
) -> PromptSession[str]:
    """The PromptSession the shell reads from (input/output injectable for tests)."""
    before_search = LineBeforeSearch()
    session: PromptSession[str] = PromptSession(
        message=[("class:prompt", "› ")],
        multiline=False,
        prompt_continuation=lambda width, n, wrap: [("class:continuation", "… ".rjust(width))],
        key_bindings=make_key_bindings(before_search),
        history=history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=completer,
        complete_while_typing=True,
        editing_mode=EditingMode.VI if vi_mode else EditingMode.EMACS,
        style=STYLE,
        enable_open_in_editor=False,
        # Ctrl-Z suspends, as in bash, python or `ollama run` (without it the byte went
        # into the line and on to the model). With no job control above, the kernel
        # drops the stop and the key does nothing.
        enable_suspend=True,
        input=input,
        output=output,
    )
    session.app.after_render += before_search.forget
    return session
