"""The approval gate: rules, grants, asking, and the log, with the real store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.config.settings import ApprovalSettings
from cortan.core.actions import DENY, Action, Answer, Review
from cortan.engine.approval import ApprovalGate
from cortan.store.approvals import ApprovalStore


def command(text: str) -> Action:
    return Action("command", "bash", text, command=text)


def tool(name: str, arguments: str = "{}") -> Action:
    return Action("tool", name, arguments)


class Person:
    """Answers the gate's questions from a script, and remembers what it was shown."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.shown: list[Review] = []

    async def __call__(self, review: Review) -> Answer:
        self.shown.append(review)
        return self.answers.pop(0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApprovalStore]:
    with ApprovalStore.open(tmp_path / "data") as opened:
        yield opened


def gate(store: ApprovalStore | None, **settings: list[str]) -> ApprovalGate:
    return ApprovalGate(ApprovalSettings(**settings), store)


def decide(g: ApprovalGate, action: Action, ask: Person | None) -> object:
    return asyncio.run(g.decide(action, ask))


def test_a_yes_once_runs_once_and_is_logged(store: ApprovalStore) -> None:
    g, person = gate(store), Person(Answer(True), DENY)
    first = asyncio.run(g.decide(command("ls -la"), person))
    second = asyncio.run(g.decide(command("ls -la"), person))
    assert (first.allowed, first.by, second.allowed, second.by) == (True, "user", False, "refused")
    assert [d.by for d in store.recent()] == ["user", "refused"]
    assert first.id == store.recent()[0].id


def test_no_terminal_runs_nothing_but_the_allowlist(store: ApprovalStore) -> None:
    g = gate(store, allow_commands=["git status*"])
    assert asyncio.run(g.decide(command("git status -s"), None)).by == "allowlist"
    refused = asyncio.run(g.decide(command("git push"), None))
    assert (refused.allowed, refused.by) == (False, "no-terminal")
    assert "no terminal" in refused.reason


def test_an_allowlist_glob_never_stretches_over_operators(store: ApprovalStore) -> None:
    g = gate(store, allow_commands=["ls *"])
    assert asyncio.run(g.decide(command("ls -la src"), None)).allowed
    for hostile in ["ls x; rm -rf ~/src", "ls $(rm -rf x)", "ls `id`", "ls | sh", "ls x\nrm y"]:
        assert not asyncio.run(g.decide(command(hostile), None)).allowed, hostile


def test_hard_denials_beat_allowlists_grants_and_yes(store: ApprovalStore) -> None:
    g = gate(store, allow_commands=["rm *"])
    person = Person(Answer(True, "always"))
    verdict = asyncio.run(g.decide(command("rm -rf ~"), person))
    assert (verdict.allowed, verdict.by) == (False, "denied")
    assert person.shown == []  # nobody is asked about what cannot run
    assert "will not run this" in verdict.reason


def test_user_denials_beat_the_allowlist(store: ApprovalStore) -> None:
    g = gate(store, allow_commands=["terraform *"], deny_commands=["*terraform destroy*"])
    verdict = asyncio.run(g.decide(command("terraform  destroy -auto-approve"), Person()))
    assert (verdict.allowed, verdict.by) == (False, "policy")


def test_session_grants_last_for_the_gate_and_are_not_kept(store: ApprovalStore) -> None:
    g = gate(store)
    asyncio.run(g.decide(tool("read_file", '{"path": "a"}'), Person(Answer(True, "session", "*"))))
    again = asyncio.run(g.decide(tool("read_file", '{"path": "b"}'), Person()))
    assert (again.allowed, again.by) == (True, "grant")
    assert store.list_grants() == []
    assert not asyncio.run(gate(store).decide(tool("read_file"), Person(DENY))).allowed


def test_always_grants_are_kept_listed_and_revoked(store: ApprovalStore) -> None:
    g = gate(store)
    asyncio.run(g.decide(command("make test"), Person(Answer(True, "always"))))
    later = gate(store)  # another run of cortan
    assert asyncio.run(later.decide(command("make test"), Person())).by == "grant"
    assert [grant.pattern for grant in later.grants()] == ["make test"]
    assert later.revoke(later.grants()[0].id) == 1
    assert not asyncio.run(later.decide(command("make test"), Person(DENY))).allowed


def test_grants_do_not_approve_unattended_runs(store: ApprovalStore) -> None:
    g = gate(store)
    asyncio.run(g.decide(command("make test"), Person(Answer(True, "always"))))
    assert asyncio.run(g.decide(command("make test"), None)).by == "no-terminal"


def test_a_grant_for_one_tool_does_not_cover_another(store: ApprovalStore) -> None:
    g = gate(store)
    asyncio.run(g.decide(tool("list_dir"), Person(Answer(True, "always", "*"))))
    assert (
        asyncio.run(g.decide(tool("run_command", '{"command": "ls"}'), Person(DENY))).by
        == "refused"
    )


def test_invisible_characters_are_shown_and_marked(store: ApprovalStore) -> None:
    person = Person(DENY)
    asyncio.run(gate(store).decide(command("ls\u200b -la \x1b[2J"), person))
    review = person.shown[0]
    assert review.shown == "ls<U+200B> -la \u241b[2J"
    assert review.risky and "not visible" in review.risks[0]


def test_a_tool_call_that_runs_a_command_is_judged_as_one(store: ApprovalStore) -> None:
    person = Person(DENY)
    action = Action("tool", "run_command", '{"command": "rm -rf build"}', command="rm -rf build")
    asyncio.run(gate(store).decide(action, person))
    assert "deletes files" in person.shown[0].risks


def test_the_exit_status_is_kept(store: ApprovalStore) -> None:
    g = gate(store)
    verdict = asyncio.run(g.decide(command("false"), Person(Answer(True))))
    g.set_status(verdict, 1)
    assert store.recent()[-1].status == 1


def test_without_a_store_grants_last_for_the_process() -> None:
    g = gate(None)
    first = asyncio.run(g.decide(command("make"), Person(Answer(True, "always"))))
    assert first.id == 0
    assert asyncio.run(g.decide(command("make"), Person())).by == "grant"


def test_a_tool_call_longer_than_the_prompt_shows_is_risky() -> None:
    from cortan.core.actions import SHOWN_LIMIT
    from cortan.render.asking import format_review, parse_answer

    g = gate(None)
    padded = '{"text": "' + "a" * SHOWN_LIMIT + '; the part that matters"}'
    review = g.review(tool("mcp__s__write", padded))
    assert review.risks[0].startswith("is too long to show whole (")
    shown = format_review(review)
    assert "the part that matters" not in shown
    assert "characters more not shown: say no unless sure" in shown
    assert parse_answer("y", review) == DENY  # one key is not enough for what was not seen
    assert parse_answer("yes", review).allow
    assert g.review(tool("mcp__s__write", '{"text": "short"}')).risks == ()
    # command mode shows a command whole, so a long one is not risky for its length
    assert not g.review(command("echo " + "a" * SHOWN_LIMIT)).risks


def test_a_grant_for_a_tool_never_covers_a_call_with_a_risk(store: ApprovalStore) -> None:
    """A session yes to `write_file {"path": "a"}` was a yes to what was seen: a later
    call holding what nobody could see, or too long to show, is asked about anew."""
    g = gate(store)
    asyncio.run(g.decide(tool("write_file", '{"path": "a"}'), Person(Answer(True, "session", "*"))))
    assert asyncio.run(g.decide(tool("write_file", '{"path": "b"}'), Person())).by == "grant"
    hidden = tool("write_file", '{"path": "b\u202e"}')
    asked = Person(DENY)
    assert asyncio.run(g.decide(hidden, asked)).by == "refused"
    assert len(asked.shown) == 1  # put to the person, not run on the grant
    huge = tool("write_file", '{"text": "' + "x" * 5000 + '"}')
    assert asyncio.run(g.decide(huge, Person(DENY))).by == "refused"
    # a grant for exactly that text still holds: it was seen, risk and all
    asyncio.run(g.decide(hidden, Person(Answer(True, "session", hidden.text))))
    assert asyncio.run(g.decide(hidden, Person())).by == "grant"
