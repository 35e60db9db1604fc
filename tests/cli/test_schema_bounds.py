"""``cortan ask --schema`` with schemas that would hold the process: bounded, one sentence.

Each runs the real cortan against the loopback Ollama; the bounds are the ones of
``cortan/engine/validation.py`` (docs/models.md).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
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
        ("(a{1000}){1000}", "is more than 10000 elements long once its repeats are written out"),
        # 4 KB that regex wrote out to 800,000 elements: 0.8 s and 562 MB for one compile.
        ("(?:" + "(a|b)" * 800 + "){1000}", "more than 10000 elements long"),
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


@pytest.mark.parametrize(
    ("pattern", "sentence"),
    [
        # regex compiled these 30,000 characters 9,000 times: 1.2 GB
        (
            "([" + "".join(map(chr, range(0x4E00, 0x4E00 + 30_000))) + "]{1000}){9}",
            "more than 10000 elements long",
        ),
        # each brace looked for its "}" to the pattern's end: 1.3 s for these, minutes
        # for the 8 MB a gateway body may hold
        ("{" * 500_000, "is 500000 characters long; cortan matches at most 40000"),
    ],
    ids=["class", "braces"],
)
def test_a_pattern_regex_would_compile_large_is_refused_at_once(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path,
    pattern: str, sentence: str,
) -> None:  # fmt: skip
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "string", "pattern": pattern}, ensure_ascii=False))
    begun = time.monotonic()
    result = cortan.run("ask", "--schema", str(path), "hi", timeout=20)
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr
    assert time.monotonic() - begun < 5
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


BACKTRACKS = "^(a|aa)+$"  # exponential in Python's re: days for 60 letters


@pytest.mark.parametrize(
    "schema",
    [
        {"unevaluatedProperties": False, "patternProperties": {BACKTRACKS: {}}},
        {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "unevaluatedProperties": False,
            "patternProperties": {BACKTRACKS: {}},
        },
        {
            "unevaluatedProperties": False,
            "$ref": "#/$defs/p",
            "$defs": {"p": {"patternProperties": {BACKTRACKS: {}}}},
        },
        {
            "unevaluatedProperties": False,
            "if": True,
            "then": {"patternProperties": {BACKTRACKS: {}}},
        },
    ],
    ids=["2020-12", "2019-09", "ref", "then"],
)
def test_unevaluated_properties_matches_its_patterns_within_the_deadline(
    cortan: type[CortanRunner], ollama_env: FakeOllama, schema: dict[str, object]
) -> None:
    # Before: jsonschema matched patternProperties for unevaluatedProperties itself, with
    # Python's re and no timeout: the process ran for days.
    ollama_env.queue(Reply(pieces=[json.dumps({"a" * 60 + "!": 1})]))
    result = cortan.run("ask", "--schema", json.dumps(schema), "hi", timeout=20)
    assert result.code == 3, result.stderr
    assert_one_sentence(result.stderr)
    assert f"matching the pattern {BACKTRACKS!r} took too long" in result.stderr
    assert len(ollama_env.chat_requests) == 1


def test_a_subschema_naming_its_draft_is_held_to_the_same_bounds(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # Before: jsonschema checked a subschema holding a $schema with its own class for that
    # draft, outside every bound: its pattern ran in Python's re for days.
    ollama_env.queue(Reply(pieces=[json.dumps("a" * 60 + "!")]))
    inner = {"$schema": "https://json-schema.org/draft/2020-12/schema", "pattern": BACKTRACKS}
    schema = json.dumps({"$defs": {"x": inner}, "$ref": "#/$defs/x"})
    result = cortan.run("ask", "--schema", schema, "hi", timeout=20)
    assert result.code == 3, result.stderr
    assert_one_sentence(result.stderr)
    assert f"matching the pattern {BACKTRACKS!r} took too long" in result.stderr
    other = {"$defs": {"x": {"$schema": "http://json-schema.org/draft-07/schema#"}}}
    mixed = cortan.run("ask", "--schema", json.dumps(other), "hi")
    assert mixed.code == 2, mixed.stderr
    assert_one_sentence(mixed.stderr)
    assert "it names two drafts" in mixed.stderr


def test_a_schema_whose_own_check_runs_past_the_deadline_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # Before: jsonschema's check of the schema had no deadline (about 10 s for these
    # 40,000 properties); then, counted, it still ran below each metaschema's $schema
    # with jsonschema's own class.
    path = tmp_path / "big.json"
    properties = {f"a{n}": {"minLength": 1} for n in range(40_000)}
    path.write_text(json.dumps({"properties": properties}, separators=(",", ":")))  # 880 KB
    begun = time.monotonic()
    result = cortan.run("ask", "--schema", str(path), "hi", timeout=30)
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "the schema cannot be used: checking took more than 1 s" in result.stderr
    assert time.monotonic() - begun < 5
    assert ollama_env.chat_requests == []


def doubling(levels: int, node: Callable[[str], dict[str, object]]) -> dict[str, object]:
    """A schema whose level n refers twice to level n - 1, as ``node`` writes it."""
    defs: dict[str, object] = {"x0": {}} | {
        f"x{n}": node(f"#/$defs/x{n - 1}") for n in range(1, levels + 1)
    }
    return {"$defs": defs, "$ref": f"#/$defs/x{levels}"}


@pytest.mark.parametrize(
    ("keyword", "node", "answer"),
    [
        ("unevaluatedItems", lambda ref: {"$ref": ref, "$dynamicRef": ref}, [1]),
        (
            "unevaluatedProperties",
            lambda ref: {"dependentSchemas": {"a": {"$ref": ref}, "b": {"$ref": ref}}},
            {"a": 1, "b": 2},
        ),
    ],
    ids=["items", "properties"],
)
def test_unevaluated_keywords_that_fan_out_are_given_up_within_the_deadline(
    cortan: type[CortanRunner], ollama_env: FakeOllama,
    keyword: str, node: Callable[[str], dict[str, object]], answer: object,
) -> None:  # fmt: skip
    # Before: jsonschema walked the 2**24 paths itself, counting no step: hours, where
    # 20 levels took 17.7 s under a deadline of 1 s.
    ollama_env.queue(Reply(pieces=[json.dumps(answer)]))
    schema = {keyword: False, **doubling(24, node)}
    begun = time.monotonic()
    result = cortan.run("ask", "--schema", json.dumps(schema), "hi", timeout=20)
    assert result.code == 3, result.stderr
    assert_one_sentence(result.stderr)
    assert "the schema cannot be used: checking took more than" in result.stderr
    assert time.monotonic() - begun < 8


def test_unique_items_of_thousands_of_objects_are_compared_at_once(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # Before: jsonschema compared each object with each: 23 s for 4,000, past the
    # deadline of 1 s; for these 8,000, minutes.
    items = [{"id": n, "tags": ["a", n % 7]} for n in range(8000)]
    again = {"tags": ["a", float(7999 % 7)], "id": 7999}  # 5 is 5.0; key order does not count
    ollama_env.queue(
        Reply(pieces=[json.dumps([*items, again])]), Reply(pieces=[json.dumps([1, True, *items])])
    )
    schema = json.dumps({"type": "array", "uniqueItems": True})
    result = cortan.run("ask", "--schema", schema, "hi", timeout=20)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)[:3] == [1, True, items[0]]  # true is not 1
    assert len(ollama_env.chat_requests) == 2  # the first had a duplicate, and was mended
