"""The terminal dialogue: the command shown, its risks, and what to do with it.

Layer: command. Everything here is said on the terminal (``/dev/tty``, or stderr
and stdin when they are one), never on stdout: stdout belongs to the command when
it runs. The person sees the command as the approval gate reviewed it (invisible
characters made visible, so what is approved is what runs), the model's one line
about it, and the risks, and answers one of: execute, edit, revise, describe,
copy, abort. What was typed before the question was shown is thrown away, unread.
The answer when nothing is typed is abort. A risky command runs only
when the whole word ``yes`` is typed, never on a single key or Enter; a command a
hard rule refuses is offered edit, revise, copy and abort only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from cortan.core.text import make_visible
from cortan.render.asking import TYPED_AHEAD, discard_typed_ahead
from cortan.render.sanitize import sanitize

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from cortan.core.actions import Review

Choice = Literal["execute", "edit", "revise", "describe", "copy", "abort"]

#: The words each answer may be typed as (the first letter, or the whole word).
_WORDS: dict[str, Choice] = {
    "y": "execute",
    "yes": "execute",
    "x": "execute",
    "execute": "execute",
    "run": "execute",
    "e": "edit",
    "edit": "edit",
    "r": "revise",
    "revise": "revise",
    "d": "describe",
    "describe": "describe",
    "c": "copy",
    "copy": "copy",
    "": "abort",
    "n": "abort",
    "no": "abort",
    "a": "abort",
    "abort": "abort",
    "q": "abort",
    "quit": "abort",
}
#: Longest edited command or change request taken from the prompt.
MAX_LINE = 8192
#: The model's one line about the command, as much of it as is shown.
EXPLANATION_SHOWN = 300
_PREFIX = 4  # "  $ " before each line of the command
_AROUND = 6  # rows the question needs besides the command: explanation, risks, menu
_DIM, _BOLD, _RED, _YELLOW, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[0m"


class Terminal:
    """The person's terminal, apart from stdout: prompt_toolkit's input and output."""

    def __init__(self, input: Input, output: Output, *, color: bool = True) -> None:
        self.input = input
        self.output = output
        self.color = color

    def size(self) -> tuple[int, int]:
        """Rows and columns of the screen (80 by 24 when it cannot say)."""
        try:
            size = self.output.get_size()
        except (OSError, ValueError):
            return 24, 80
        return max(size.rows, 1), max(size.columns, 1)

    def write(self, text: str, style: str = "") -> None:
        """``text`` (already made safe by the caller) on its own line(s)."""
        if style and self.color:
            text = f"{style}{text}{_RESET}"
        self.output.write_raw(text.replace("\n", "\r\n") + "\r\n")
        self.output.flush()

    def dim(self, text: str) -> None:
        self.write(sanitize(text), _DIM)

    def warn(self, text: str) -> None:
        self.write(sanitize(text), _YELLOW)

    def error(self, text: str) -> None:
        self.write(sanitize(text), _RED)

    async def read(self, message: str, default: str = "") -> str:
        """One line typed by the person. Ctrl-C raises KeyboardInterrupt, Ctrl-D EOFError."""
        from prompt_toolkit import PromptSession

        session: PromptSession[str] = PromptSession(
            input=self.input,
            output=self.output,
            enable_suspend=True,  # Ctrl-Z, as the shell's
        )
        line = await session.prompt_async(message, default=default, handle_sigint=False)
        return line[:MAX_LINE]

    def discard_typed_ahead(self) -> None:
        """Throw away keys typed before the question (see :func:`discard_typed_ahead`)."""
        try:
            fd = self.input.fileno()
        except (NotImplementedError, OSError, ValueError):
            return
        if discard_typed_ahead(fd):
            self.warn(TYPED_AHEAD)

    def copy(self, text: str) -> None:
        """Put ``text`` on the clipboard through the terminal (OSC 52)."""
        from cortan.render.clipboard import make_osc52

        self.output.write_raw(make_osc52(text))
        self.output.flush()


def fit_screen(terminal: Terminal, review: Review) -> Review:
    """``review``, marked risky when the command is taller than the screen: its start
    would be out of sight when the question is asked, so only ``yes`` runs it."""
    rows, columns = terminal.size()
    lines = review.shown.split("\n")
    tall = sum(-(-(_PREFIX + _width(line)) // columns) or 1 for line in lines)
    if tall + _AROUND <= rows:
        return review
    risk = f"is {tall} rows tall on a screen of {rows}: scroll up to read it whole"
    return review._replace(risks=(*review.risks, risk))


def _width(text: str) -> int:
    from prompt_toolkit.utils import get_cwidth

    return get_cwidth(text)


def show(terminal: Terminal, review: Review, explanation: str) -> None:
    """The command as reviewed, what the model says it does, and what is risky about it.

    The explanation is cut at :data:`EXPLANATION_SHOWN` characters: a model's long
    one would push the command itself off the screen (``d`` asks for a longer one).
    """
    terminal.write("")
    for number, line in enumerate(review.shown.split("\n")):
        terminal.write(("  $ " if number == 0 else "  > ") + line, _BOLD)
    if explanation:
        said = make_visible(explanation)
        if len(said) > EXPLANATION_SHOWN:
            more = len(said) - EXPLANATION_SHOWN
            said = f"{said[:EXPLANATION_SHOWN]}… ({more} characters more not shown)"
        terminal.write("  # " + said, _DIM)
    if review.denial is not None:
        terminal.write(f"  cortan will not run this: {review.denial}", _RED)
        return
    for risk in review.risks:
        terminal.write(f"  ! {risk}", _YELLOW)
    if review.standing == "allowlist":
        terminal.write("  (allowed by [approval] in the config)", _DIM)
    elif review.standing == "grant":
        terminal.write("  (allowed by an earlier yes; `cortan grants` lists them)", _DIM)


def menu(review: Review) -> str:
    """The question under the command; the default (Enter) is always abort."""
    if review.denial is not None:
        return "[e]dit  [r]evise  [c]opy  [N]o, abort: "
    run = "type yes to run it" if review.risky else "[y]es, run it"
    return f"{run}  [e]dit  [r]evise  [d]escribe  [c]opy  [N]o, abort: "


def parse_choice(review: Review, typed: str) -> tuple[Choice | None, str]:
    """What the typed answer means here, or None and the sentence saying what to type."""
    word = typed.strip().lower()
    choice = _WORDS.get(word)
    if choice is None:
        return None, "answer y, e, r, d, c or n (Enter aborts)"
    if review.denial is not None and choice in ("execute", "describe"):
        return None, "this command cannot run: edit, revise, copy or abort"
    if choice == "execute" and review.risky and word != "yes":
        return None, "this command is risky: type the whole word yes to run it"
    return choice, ""


async def choose(terminal: Terminal, review: Review) -> Choice:
    """Ask until the answer means something here; Ctrl-C and Ctrl-D propagate.

    Keys typed before the question are thrown away first: a ``y`` pressed while the
    model was answering answers nothing.
    """
    terminal.discard_typed_ahead()
    while True:
        choice, problem = parse_choice(review, await terminal.read(menu(review)))
        if choice is not None:
            return choice
        terminal.warn(problem)
