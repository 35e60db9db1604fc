"""The approval gate: the one place that answers "may this run?".

Layer: engine. Command mode asks it before a shell command runs; the tool loop asks it
before every tool call; the gateway will ask it too. Each asks the same way, so the
rules hold whoever proposed the action (a person's sentence, a model's tool call, a
file the model read that says "approve all tools"):

1. **Hard denials** (:mod:`cortan.engine.risk`) and the user's ``deny_*`` patterns
   refuse outright; no answer, grant or allowlist approves them.
2. The user's **allowlist** (``[approval] allow_commands`` / ``allow_tools``) approves
   without asking, with or without a terminal. A pattern never matches a command
   holding a shell operator.
3. A standing **grant** (a yes given for this session or always) approves without
   asking, when there is a terminal to have asked on: unattended runs (pipes, cron)
   are approved only by what the user wrote in the config. A grant for a tool covers
   its calls whatever the arguments, but never a call with a risk (invisible
   characters, text too long to show, a risky command): that one the person has not
   seen, so it is asked about anew. Only a grant for exactly that text covers it.
4. Otherwise the front end's **asker** puts the reviewed action to the person, on the
   terminal; with no asker (no terminal), nothing runs.

Every decision is logged in the store (``cortan grants log``) and in the debug log,
before what it allows starts. What a person is shown is the text with every invisible
character made visible (:func:`cortan.core.text.make_visible`), so what is approved
is what runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from cortan.core.actions import (
    SHOWN_LIMIT,
    Action,
    Answer,
    Asker,
    DecidedBy,
    Grant,
    Review,
    Scope,
    Verdict,
)
from cortan.core.errors import StoreError
from cortan.core.text import make_visible
from cortan.engine.risk import is_plain, judge_command

if TYPE_CHECKING:
    from cortan.config.settings import ApprovalSettings
    from cortan.store.approvals import ApprovalStore

logger = logging.getLogger(__name__)

__all__ = ["NO_TERMINAL", "ApprovalGate", "Asker"]

NO_TERMINAL = (
    "nothing runs without a yes, and there is no terminal to ask on; "
    "to let it run unattended, add it to [approval] in the config"
)


class ApprovalGate:
    """Decides, remembers the yeses, and logs every decision."""

    def __init__(
        self,
        settings: ApprovalSettings,
        store: ApprovalStore | None = None,
        *,
        open_store: Callable[[], ApprovalStore | None] | None = None,
    ) -> None:
        self._settings = settings
        self._kept = store  # None: the store is off; grants last for this process only
        # Or opened when first needed: a REPL that never asks anything creates no store.
        self._open_store = open_store
        self._session: list[Grant] = []
        self._next_session_id = -1  # session grants are numbered below zero, store ones above

    def close(self) -> None:
        if self._kept is not None:
            self._kept.close()

    @property
    def _store(self) -> ApprovalStore | None:
        if self._open_store is not None:
            opener, self._open_store = self._open_store, None
            self._kept = opener()
        return self._kept

    # -- judging ------------------------------------------------------------------------

    def review(self, action: Action, *, attended: bool = True) -> Review:
        """What the rules say of ``action`` before anyone is asked.

        ``attended``: a person is there to be asked, so standing grants count too.
        """
        shown = make_visible(action.text)
        risks: tuple[str, ...] = ()
        denial = None
        if action.command is not None:
            judged = judge_command(action.command)
            risks, denial = judged.risks, judged.denial
        if shown != action.text:
            risks = ("holds characters that are not visible (shown as <U+...>)", *risks)
        longest = len(make_visible(action.command or action.text))
        if action.kind == "tool" and longest > SHOWN_LIMIT:
            # the prompt shows the first SHOWN_LIMIT characters; the rest may be the
            # part that matters (`echo ok` + 4000 spaces + `; nc host < notes`)
            risks = (
                f"is too long to show whole ({longest - SHOWN_LIMIT} characters not shown)",
                *risks,
            )
        if denial is None:
            denial = self._denied_by_user(action)
        standing: DecidedBy | None = None
        if denial is None:
            if self._allowlisted(action):
                standing = "allowlist"
            elif attended and self._granted(action, exactly=bool(risks)) is not None:
                standing = "grant"
        return Review(action, shown, risks, denial, standing)

    async def decide(self, action: Action, ask: Asker | None) -> Verdict:
        """The whole decision for ``action``: rules, then ``ask`` (None: no terminal)."""
        review = self.review(action, attended=ask is not None)
        if review.denial is not None or review.standing is not None:
            return self.settle(review, None)
        if ask is None:
            return self._record(action, Verdict(False, "no-terminal", NO_TERMINAL))
        return self.settle(review, await ask(review))

    def settle(self, review: Review, answer: Answer | None) -> Verdict:
        """Record the decision on a reviewed action: the rules', else the person's ``answer``.

        Front ends that ask in their own way (command mode's execute/edit/revise menu)
        review, ask, and settle here, so the same rules and the same log apply.
        """
        action = review.action
        if review.denial is not None:
            by: DecidedBy = "denied" if review.denial.startswith("it ") else "policy"
            return self._record(
                action, Verdict(False, by, f"cortan will not run this: {review.denial}")
            )
        if review.standing is not None:
            reason = (
                "allowed by [approval] in the config"
                if review.standing == "allowlist"
                else "allowed by an earlier yes"
            )
            return self._record(action, Verdict(True, review.standing, reason))
        if answer is None:
            return self._record(action, Verdict(False, "no-terminal", NO_TERMINAL))
        if not answer.allow:
            return self._record(action, Verdict(False, "refused", "you said no"))
        if answer.scope != "once":
            self._keep(action, answer.scope, answer.pattern or action.text)
        return self._record(
            action, Verdict(True, "user", f"you said yes ({answer.scope})", answer.scope)
        )

    def set_status(self, verdict: Verdict, status: int) -> None:
        """Log the exit status of the command ``verdict`` let run."""
        logger.info("decision %d: exit status %d", verdict.id, status)
        if self._store is not None and verdict.id:
            try:
                self._store.set_status(verdict.id, status)
            except StoreError as exc:
                logger.warning("could not record the exit status: %s", exc)

    # -- grants -------------------------------------------------------------------------

    def grants(self) -> list[Grant]:
        """Standing yeses: this session's, then the kept ones."""
        kept = self._store.list_grants() if self._store is not None else []
        return [*self._session, *kept]

    def revoke(self, grant_id: int | None) -> int:
        """Forget grant ``grant_id`` (None: every grant, kept and this session's)."""
        before = len(self._session)
        self._session = [g for g in self._session if grant_id is not None and g.id != grant_id]
        gone = before - len(self._session)
        if self._store is not None and (grant_id is None or grant_id > 0):
            gone += self._store.revoke(grant_id)
        return gone

    def _keep(self, action: Action, scope: Scope, pattern: str) -> None:
        if scope == "always" and self._store is not None:
            try:
                self._store.add_grant(action.kind, action.name, pattern)
                return
            except StoreError as exc:  # kept for this session, said in the log
                logger.warning("could not keep the grant: %s; it lasts for this session", exc)
        self._session.append(
            Grant(self._next_session_id, action.kind, action.name, pattern, "session", 0.0)
        )
        self._next_session_id -= 1

    def _granted(self, action: Action, *, exactly: bool = False) -> Grant | None:
        """The grant that covers ``action``; ``exactly``: only one given for its very text."""
        for grant in self.grants():
            if (
                grant.kind == action.kind
                and grant.name == action.name
                and (grant.pattern == action.text if exactly else _fits(action, grant.pattern))
            ) or _same_command(grant, action):
                return grant
        return None

    def _allowlisted(self, action: Action) -> bool:
        if action.kind == "command":
            patterns = self._settings.allow_commands
            return any(_fits(action, pattern) for pattern in patterns)
        return any(fnmatchcase(action.name, pattern) for pattern in self._settings.allow_tools)

    def _denied_by_user(self, action: Action) -> str | None:
        if action.kind == "command":
            text = " ".join(action.text.split())
            hit = next((p for p in self._settings.deny_commands if fnmatchcase(text, p)), None)
        else:
            hit = next((p for p in self._settings.deny_tools if fnmatchcase(action.name, p)), None)
        return None if hit is None else f"[approval] denies {make_visible(hit)!r}"

    def _record(self, action: Action, verdict: Verdict) -> Verdict:
        logger.info(
            "%s %s %r: %s by %s (%s)",
            action.kind,
            action.name,
            make_visible(action.text),
            "allowed" if verdict.allowed else "refused",
            verdict.by,
            verdict.reason,
        )
        if self._store is None:
            return verdict
        try:
            return verdict._replace(id=self._store.log(action, verdict))
        except StoreError as exc:
            logger.warning("could not record the decision: %s", exc)
            return verdict


def _same_command(grant: Grant, action: Action) -> bool:
    """A lasting yes to the ``run_command`` tool for one command line also holds for
    that same command line in command mode (docs/commands.md): the grant is kept as the
    tool's arguments, ``{"command": …}``, the command as typed. Exactly, never a glob."""
    if action.kind != "command" or action.command is None:
        return False
    if (grant.kind, grant.name) != ("tool", "run_command"):
        return False
    try:
        arguments = json.loads(grant.pattern)
    except ValueError:
        return False
    granted = arguments.get("command") if isinstance(arguments, dict) else None
    return isinstance(granted, str) and granted == action.command


def _fits(action: Action, pattern: str) -> bool:
    """True when ``action``'s text is ``pattern`` exactly, or a safe match of it."""
    if action.text == pattern:
        return True
    if action.command is not None and not is_plain(action.text):
        return False  # a glob must not stretch over `;`, `|`, `$(...)`
    text = " ".join(action.text.split()) if action.kind == "command" else action.text
    return fnmatchcase(text, pattern)
