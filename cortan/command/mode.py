"""Command mode on a terminal: ask, review, put it to the person, run what they approve.

Layer: command. One :class:`CommandMode` serves ``cortan cmd`` and the REPL's ``/run``
alike: the model proposes (:mod:`cortan.command.proposal`), the approval gate reviews
(:class:`cortan.engine.approval.ApprovalGate`: hard denials, the user's patterns,
grants), the dialogue asks (:mod:`cortan.command.dialogue`), and every decision is
settled with the gate, so it is logged (``cortan grants log``) before the command
starts, and its exit status after.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Literal, NamedTuple

from cortan.command.dialogue import Choice, Terminal, choose, fit_screen, show
from cortan.command.execute import run_in_shell
from cortan.command.proposal import Interrupted, Proposal
from cortan.core.actions import DENY, Action, Answer, Review, Verdict
from cortan.core.errors import CortanError
from cortan.core.text import make_visible

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from cortan.command.environment import Environment
    from cortan.command.proposal import CommandModel
    from cortan.engine.approval import ApprovalGate

Ending = Literal["ran", "aborted", "interrupted", "copied", "refused"]


class Outcome(NamedTuple):
    """How command mode ended: the command's exit status when it ran."""

    ending: Ending
    status: int | None = None
    command: str = ""


class Unattended(NamedTuple):
    """A run without a terminal: what was proposed, the review, and what the gate said."""

    proposal: Proposal
    review: Review
    verdict: Verdict | None = None  # None: not asked to run (the command is only printed)
    status: int | None = None  # the exit status, when it ran


class CommandMode:
    """One sentence, turned into one command, run only with the person's yes."""

    def __init__(
        self,
        model: CommandModel,
        gate: ApprovalGate,
        env: Environment,
        terminal: Terminal | None,
        *,
        keep_history: bool = False,
        own_sigint: bool = True,
        standing_runs: bool = False,
        conversation: str | None = None,
    ) -> None:
        self.model = model
        self.gate = gate
        self.env = env
        self._terminal = terminal
        self.keep_history = keep_history
        self.own_sigint = own_sigint
        self.standing_runs = standing_runs  # --yes: an allowlist or grant runs it unasked
        self.conversation = conversation

    @property
    def terminal(self) -> Terminal:
        assert self._terminal is not None, "the dialogue needs a terminal"
        return self._terminal

    async def run(self, words: str) -> Outcome:
        """The whole dialogue for ``words``; CortanError when the model gives no command."""
        try:
            proposal = await self._ask(self.model.propose(words))
        except Interrupted:
            self.terminal.dim("interrupted: nothing ran")
            return Outcome("interrupted")
        return await self._dialogue(proposal)

    async def _ask(self, work: Awaitable[Proposal]) -> Proposal:
        from cortan.render.echo import quiet_control_keys

        self.terminal.dim("asking the model for a command…")
        with quiet_control_keys():  # a Ctrl-C while it thinks draws no ^C before "interrupted"
            return await work

    def review(self, command: str, *, attended: bool = True) -> Review:
        action = Action(
            "command", self.env.shell, command, command=command, conversation=self.conversation
        )
        return self.gate.review(action, attended=attended)

    async def unattended(self, words: str, *, run: bool) -> Unattended:
        """No terminal: the command proposed and reviewed; run only when ``run`` (``--yes``)
        and the gate allows it with nobody to ask (the [approval] allowlist alone)."""
        proposal = await self.model.propose(words)
        review = self.review(proposal.command, attended=False)
        if review.denial is not None:
            return Unattended(proposal, review, self.gate.settle(review, None))
        if not run:
            return Unattended(proposal, review)
        verdict = await self.gate.decide(review.action, None)
        if not verdict.allowed:
            return Unattended(proposal, review, verdict)
        status = await run_in_shell(
            self.env.shell_path, proposal.command, ended=partial(self.gate.set_status, verdict)
        )
        if self.keep_history:
            self._keep_in_history(proposal.command)
        return Unattended(proposal, review, verdict, status)

    async def _dialogue(self, proposal: Proposal) -> Outcome:
        command, explanation = proposal
        while True:
            review = fit_screen(self.terminal, self.review(command))
            show(self.terminal, review, explanation)
            if self.standing_runs and review.standing is not None and review.denial is None:
                return await self._execute(review, Answer(True))
            choice = await self._answer(review)
            if isinstance(choice, Outcome):
                return choice
            if choice == "execute":
                return await self._execute(review, Answer(True))
            if choice == "abort":
                return self._abort(review, "refused" if review.denial else "aborted")
            if choice == "copy":
                # what was shown, as --print prints it: a pasted command hides nothing
                self.terminal.copy(review.shown)
                self.terminal.dim(
                    "copied to the clipboard through the terminal (OSC 52); "
                    "a terminal without it ignores this: the command is shown above"
                )
                return Outcome("copied", command=command)
            try:
                command, explanation = await self._change(choice, command, explanation)
            except (KeyboardInterrupt, EOFError, Interrupted):
                continue  # back to the same command: Ctrl-C leaves only from the question
            except CortanError as exc:
                self.terminal.error(str(exc))

    async def _answer(self, review: Review) -> Choice | Outcome:
        """The person's choice; the Outcome when they left the question with Ctrl-C."""
        try:
            return await choose(self.terminal, review)
        except KeyboardInterrupt:
            return self._abort(review, "interrupted")
        except EOFError:
            return "abort"
        except asyncio.CancelledError:  # SIGTERM, SIGHUP: logged as a no, then stop
            self._abort(review, "interrupted")
            raise

    def _abort(self, review: Review, ending: Ending) -> Outcome:
        self.gate.settle(review, DENY)
        self.terminal.dim("aborted: nothing ran")
        return Outcome(ending, command=review.action.text)

    async def _change(self, choice: Choice, command: str, explanation: str) -> Proposal:
        """Edit, revise or describe: the command to show next, and its explanation."""
        if choice == "edit":
            edited = (await self.terminal.read("edit: ", default=command)).strip()
            if edited and edited != command:
                return Proposal(edited, "(edited by you)")
        elif choice == "revise":
            change = (await self.terminal.read("what should change? ")).strip()
            if change:
                return await self._ask(self.model.revise(change, command))
        elif choice == "describe":
            self.terminal.dim("asking the model to describe it…")
            described = await self.model.describe(command)
            self.terminal.write(make_visible_lines(described))
        return Proposal(command, explanation)

    async def _execute(self, review: Review, answer: Answer) -> Outcome:
        verdict = self.gate.settle(review, answer)
        command = review.action.text
        if not verdict.allowed:
            self.terminal.error(verdict.reason)
            return Outcome("refused", command=command)
        status = await run_in_shell(
            self.env.shell_path,
            command,
            own_sigint=self.own_sigint,
            ended=partial(self.gate.set_status, verdict),
        )
        if status == 0:
            self.terminal.dim("exit status 0")
        else:
            self.terminal.warn(f"exit status {status}")
        if self.keep_history:
            self._keep_in_history(command)
        return Outcome("ran", status, command)

    def _keep_in_history(self, command: str) -> None:
        warn = self._terminal.warn if self._terminal is not None else _warn_stderr
        from cortan.command.history import HistoryRefused, append_history
        from cortan.core.files import NotPrivateFile

        try:
            append_history(self.env.shell, command)
        except HistoryRefused as exc:
            warn(f"not added to the shell history: {exc}")
        except NotPrivateFile as exc:
            warn(f"not added to the shell history: the history file {exc}")
        except OSError as exc:
            warn(f"not added to the shell history: {exc.strerror or exc}")


def _warn_stderr(text: str) -> None:
    import sys

    from cortan.render.sanitize import sanitize

    sys.stderr.write(f"cortan: warning: {sanitize(text)}\n")


def make_visible_lines(text: str) -> str:
    """A model's description, each line made visible (no escapes, no hidden characters)."""
    return "\n".join(make_visible(line) for line in text.split("\n"))
