"""``cortan ask --schema`` with schemas that would hold the process: bounded, one sentence.

Each runs the real cortan against the loopback Ollama; the bounds are the ones of
``cortan/engine/validation.py`` (docs/models.md).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, measured_command
from tests.servers import FakeOllama, Reply


def fan_out(levels: int) -> str:
    """A schema whose ``$ref`` branches twice per level: 2**levels checks of one value."""
    defs: dict[str, object] = {"a0": {"type": "integer"}}
    for level in range(1, levels + 1):
        ref = {"$ref": f"#/$defs/a{level - 1}"}
        defs[f"a{level}"] = {"anyOf": [ref, ref]}
    return json.dumps({"$defs": defs, "$ref": f"#/$defs/a{levels}"})


def test_a_schema_that_fans_out_is_given_up_within_its_deadline(
    ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # Before: 4.8 s and 396 MB for each of two checks (the answer, then its repair).
    ollama_env.queue(Reply(pieces=['"x"']))
    peak = tmp_path / "peak"
    begun = time.monotonic()
    done = subprocess.run(
        [*measured_command(peak), "ask", "--schema", fan_out(16), "hi"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - begun
    assert done.returncode == 3, done.stderr
    assert_one_sentence(done.stderr)
    assert "the schema cannot be used: checking took more than 1 s" in done.stderr
    assert '"x"' in done.stderr  # the answer is kept
    assert len(ollama_env.chat_requests) == 1  # no repair: the model cannot mend the schema
    assert elapsed < 8
    assert int(peak.read_text()) < 250_000  # KiB


def test_a_pattern_that_backtracks_is_given_up(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # Before: Python's re took hours on 60 letters (it is exponential in them).
    ollama_env.queue(Reply(pieces=[json.dumps({"s": "a" * 60 + "!"})]))
    schema = json.dumps({"properties": {"s": {"pattern": "^(a|aa)+$"}}})
    result = cortan.run("ask", "--schema", schema, "hi", timeout=20)
    assert result.code == 3, result.stderr
    assert_one_sentence(result.stderr)
    assert "matching the pattern '^(a|aa)+$' took too long" in result.stderr


@pytest.mark.parametrize(
    ("pattern", "sentence"),
    [
        ("(a{1,60000}){1,60000}b", "repeats up to 60000 times; cortan matches at most 1000"),
        ("(a{1000}){1000}", "repeats more than 100000 times in all"),
        ("a{" + "9" * 5000 + "}", "repeats up to 9999999999999999999… times"),
    ],
)
def test_a_pattern_with_huge_repeats_is_refused_before_asking(
    cortan: type[CortanRunner], ollama_env: FakeOllama, pattern: str, sentence: str
) -> None:
    # Before: the check of the answer ran for minutes (or regex's compile took gigabytes).
    ollama_env.queue(Reply(pieces=['"aaa"']))
    schema = json.dumps({"type": "string", "pattern": pattern})
    result = cortan.run("ask", "--schema", schema, "hi", timeout=20)
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr
    assert ollama_env.chat_requests == []


def test_a_schema_with_a_number_past_pythons_limit_is_a_usage_error(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # Before: an internal error (ValueError: Exceeds the limit (4300 digits) ...).
    result = cortan.run("ask", "--schema", '{"maximum": ' + "9" * 5000 + "}", "hi")
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "the schema holds a number too long to read" in result.stderr


def test_an_answer_with_a_number_past_pythons_limit_gets_its_repair(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # Before: an internal error, and the answer lost.
    ollama_env.queue(Reply(pieces=["9" * 5000]), Reply(pieces=["7"]))
    result = cortan.run("ask", "--schema", '{"type": "integer"}', "hi")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "7"
    assert "the answer holds a number too long to read" in result.stderr
