"""What may run, and what was decided about it: the approval gate's vocabulary.

Layer: core. Command mode (a sentence turned into a shell command) and tool calls
(a model reading a file, calling an MCP server) both end in the same question, "may
this run?", answered by one gate (:mod:`cortan.engine.approval`). These are the
values that question is asked and answered in, shared by the engine, the store and
every front end that asks a person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, NamedTuple

#: ``command``: a shell command line; ``tool``: a call to a built-in or MCP tool.
ActionKind = Literal["command", "tool"]
#: How long a yes lasts: this one call, the rest of this session, or from now on.
Scope = Literal["once", "session", "always"]
SCOPES: tuple[Scope, ...] = ("once", "session", "always")
#: Who or what decided. ``denied``: a hard denial nothing overrides; ``policy``: a
#: denial the user configured; ``allowlist``: a pattern the user configured;
#: ``grant``: an earlier yes for the session or always; ``user``: asked just now;
#: ``refused``: the user said no; ``no-terminal``: nobody could be asked.
DecidedBy = Literal["denied", "policy", "allowlist", "grant", "user", "refused", "no-terminal"]


class Action(NamedTuple):
    """One thing that asks to run.

    ``name`` is the shell for a command (``bash``) or the tool's name (``read_file``,
    ``mcp:files/read``); ``text`` is the command line or the tool's arguments as JSON;
    ``command`` is the shell command the action would run, when it runs one (command
    mode, the ``run_command`` tool), so its risks are judged whoever asks.
    """

    kind: ActionKind
    name: str
    text: str
    command: str | None = None
    conversation: str | None = None  # the conversation it belongs to, for the log


class Review(NamedTuple):
    """What a person is shown before deciding, and what the rules already say.

    ``shown`` is the text with everything invisible made visible, so what is approved
    is what runs; ``risks`` are short phrases ("deletes files", "runs as root"); a
    ``denial`` is the reason a hard rule refuses it (then nothing may approve it);
    ``standing`` is how an allowlist or grant already approves it, if one does.
    """

    action: Action
    shown: str
    risks: tuple[str, ...] = ()
    denial: str | None = None
    standing: DecidedBy | None = None

    @property
    def risky(self) -> bool:
        return bool(self.risks)


class Answer(NamedTuple):
    """A person's answer: yes for a scope, or no.

    ``pattern`` widens a session or always grant beyond this exact text (``*``: any
    arguments to this tool); None grants exactly what was shown.
    """

    allow: bool
    scope: Scope = "once"
    pattern: str | None = None


DENY = Answer(allow=False)

#: Characters of a tool call (its arguments, or the command it runs) the approval prompt
#: shows. A call longer than that is risky in itself: what was not shown may be what it
#: does, so only a typed word allows it (see ApprovalGate.review).
SHOWN_LIMIT = 4000


class Verdict(NamedTuple):
    """The gate's decision, as recorded: ``id`` is its row in the log (0: not stored)."""

    allowed: bool
    by: DecidedBy
    reason: str
    scope: Scope | None = None
    id: int = 0


class Grant(NamedTuple):
    """A standing yes: for actions of ``kind`` named ``name`` whose text fits ``pattern``."""

    id: int
    kind: ActionKind
    name: str
    pattern: str
    scope: Scope
    created: float


#: What a front end hands the gate to ask a person: the review in, the answer out.
#: None where there is no terminal to ask on (a pipe, cron, the gateway).
Asker = Callable[[Review], Awaitable[Answer]]
