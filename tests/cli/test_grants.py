"""`cortan grants`: listing, revoking and the decision log, over the real store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cortan.config.settings import ApprovalSettings
from cortan.core.actions import Action, Answer, Review
from cortan.engine.approval import ApprovalGate
from cortan.store.approvals import ApprovalStore
from tests.conftest import CortanRunner, assert_one_sentence


async def yes_always(review: Review) -> Answer:
    return Answer(True, "always")


def keep_grant(data_dir: Path, text: str) -> None:
    with ApprovalStore.open(data_dir) as store:
        gate = ApprovalGate(ApprovalSettings(), store)
        asyncio.run(gate.decide(Action("command", "bash", text, command=text), yes_always))


def test_no_store_means_no_grants(cortan: type[CortanRunner]) -> None:
    result = cortan.run("grants")
    assert result.code == 0 and result.stdout == ""
    assert "no standing grants" in result.stderr
    assert json.loads(cortan.run("grants", "log", "--json").stdout) == []
    empty = cortan.run("grants", "log")  # it printed nothing at all, as if broken
    assert (empty.code, empty.stdout) == (0, "")
    assert "no decisions logged yet" in empty.stderr


def test_list_log_and_revoke(cortan: type[CortanRunner], isolated_env: Path) -> None:
    keep_grant(isolated_env / "data", "make test")
    keep_grant(isolated_env / "data", "echo \x1b[2J")
    listed = json.loads(cortan.run("grants", "list", "--json").stdout)
    assert [g["pattern"] for g in listed] == ["make test", "echo \x1b[2J"]
    text = cortan.run("grants").stdout
    assert "\x1b" not in text and "echo \u241b[2J" in text
    log = json.loads(cortan.run("grants", "log", "--json").stdout)
    assert [(d["by"], d["allowed"], d["scope"]) for d in log] == [("user", True, "always")] * 2
    assert cortan.run("grants", "revoke", str(listed[0]["id"])).code == 0
    assert [g["pattern"] for g in json.loads(cortan.run("grants", "list", "--json").stdout)] == [
        "echo \x1b[2J"
    ]
    assert cortan.run("grants", "revoke", "--all").code == 0
    assert json.loads(cortan.run("grants", "list", "--json").stdout) == []


def test_bad_revokes_are_one_sentence(cortan: type[CortanRunner], isolated_env: Path) -> None:
    keep_grant(isolated_env / "data", "make")
    for args in (
        ("grants", "revoke"),
        ("grants", "revoke", "99"),
        ("grants", "revoke", "1", "--all"),
    ):
        result = cortan.run(*args)
        assert result.code == 2, args
        assert_one_sentence(result.stderr)
    assert cortan.run("grants", "revoke", "x").code == 2


def test_the_log_names_the_tool(cortan: type[CortanRunner], isolated_env: Path) -> None:
    with ApprovalStore.open(isolated_env / "data") as store:
        gate = ApprovalGate(ApprovalSettings(), store)
        action = Action("tool", "read_file", '{"path": "notes.txt"}')
        asyncio.run(gate.decide(action, yes_always))
    (line,) = cortan.run("grants", "log").stdout.splitlines()
    assert line.split("\t")[1:] == ["tool", "read_file", "ran (user)", '{"path": "notes.txt"}']


async def no(review: Review) -> Answer:
    return Answer(False)


def test_the_log_says_who_said_no(cortan: type[CortanRunner], isolated_env: Path) -> None:
    """A command the person declined was logged "refused (refused)"; a yes is "ran (user)"."""
    with ApprovalStore.open(isolated_env / "data") as store:
        gate = ApprovalGate(ApprovalSettings(), store)
        asyncio.run(gate.decide(Action("command", "bash", "rm x", command="rm x"), no))
    (line,) = cortan.run("grants", "log").stdout.splitlines()
    assert line.split("\t")[3] == "refused (user)"
