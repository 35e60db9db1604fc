"""A session store whose rows hold what cortan never writes (a hand edit with ``sqlite3``,
a disk error, another cortan): every command resumes, reads on or says one sentence,
never an internal error, and never hands a damaged value out as an answer (red team)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_grants import keep_grant
from tests.conftest import CortanRunner, measured_command
from tests.servers import FakeOllama


@pytest.fixture
def data_dir(isolated_env: Path) -> Path:
    return isolated_env / "data"


def damage(data_dir: Path, *statements: str) -> None:
    """Run ``statements`` on the store as a user's ``sqlite3`` shell could, checks off."""
    conn = sqlite3.connect(data_dir / "cortan.db")
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def no_internal_error(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "internal error" not in stderr, stderr


# -- cortan batch: resuming a job ---------------------------------------------------------


@pytest.fixture
def answered_job(cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path) -> Path:
    """A batch of three items, every one answered and kept in the store."""
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": f"p{i}"}) + "\n" for i in range(3))
    )
    first = cortan.run("batch", str(source))
    assert first.code == 0, first.stderr
    return source


def rerun(cortan: type[CortanRunner], source: Path) -> tuple[list[dict[str, Any]], str]:
    result = cortan.run("batch", str(source))
    no_internal_error(result.stderr)
    assert result.code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


@pytest.mark.parametrize(
    "output",
    [
        "'not json'",
        "X'FF00'",  # a blob: it was written as b'\xff\x00'
        "CAST(X'7B22FF227D' AS TEXT)",  # not UTF-8: the whole job stopped on it
        "(SELECT output FROM batch_items WHERE position = 0)",  # another item's line
    ],
)
def test_a_damaged_kept_line_is_asked_again_never_written(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    answered_job: Path,
    data_dir: Path,
    output: str,
) -> None:
    damage(data_dir, f"UPDATE batch_items SET output = {output} WHERE position = 1")
    out, stderr = rerun(cortan, answered_job)
    assert [(o["id"], o["finish_reason"]) for o in out] == [
        ("q0", "stop"),
        ("q1", "stop"),
        ("q2", "stop"),
    ]
    assert "line 2: the answer kept by an earlier run is damaged" in stderr
    assert len(ollama_env.chat_requests) == 4  # three the first time, q1 again


@pytest.mark.parametrize(
    "change",
    [
        "fingerprint = 'abc'",  # text: TypeError
        "fingerprint = 99999999999999",  # a number: a buffer that large, MemoryError
        "status = CAST(X'FF' AS TEXT)",  # not UTF-8: the job did not start
        "status = 'weird'",
    ],
)
def test_a_damaged_item_state_is_asked_again(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    answered_job: Path,
    data_dir: Path,
    change: str,
) -> None:
    damage(data_dir, f"UPDATE batch_items SET {change} WHERE position = 1")
    out, _ = rerun(cortan, answered_job)
    assert [o["id"] for o in out] == ["q0", "q1", "q2"]
    assert len(ollama_env.chat_requests) == 4


@pytest.mark.parametrize(
    "change",
    [
        "owner = 'abc', beat = 1e18",  # os.kill('abc'): TypeError
        "owner = 99999999999999999, beat = 1e18",  # taken for a number typed by the user
        "owner = 1, beat = 'soon'",  # compared with a float: TypeError
        "owner = 1, beat = 1e18",  # a live pid beating far in the future: held for ever
        "name = CAST(X'FF' AS TEXT)",  # not UTF-8: "Could not decode to UTF-8 column 'name'"
    ],
)
def test_a_damaged_job_row_does_not_hold_the_job(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    answered_job: Path,
    data_dir: Path,
    change: str,
) -> None:
    damage(data_dir, f"UPDATE batch_jobs SET {change}")
    out, stderr = rerun(cortan, answered_job)
    assert [o["id"] for o in out] == ["q0", "q1", "q2"]
    assert "resuming: 3 items answered" in stderr
    assert len(ollama_env.chat_requests) == 3


# -- sessions, logs, continuing: damaged message and conversation rows -------------------

READERS = [
    ("sessions", "list"),
    ("sessions", "list", "--json"),
    ("sessions", "show", "work"),
    ("sessions", "export", "work"),
    ("sessions", "export", "work", "--format", "json"),
    ("logs",),
    ("logs", "--json"),
    ("logs", "-q", "hello"),
    ("ask", "--session", "work", "more"),
]


@pytest.mark.parametrize(
    "statement",
    [
        # a blob where text belongs: "expected str instance, bytes found"
        "UPDATE messages SET content = X'FF00', thinking = X'00' WHERE role = 'assistant'",
        # not UTF-8: every command reading the message failed on "Could not decode"
        "UPDATE messages SET content = CAST(X'68FF' AS TEXT)",
        # not numbers where numbers belong: TypeError in every listing
        "UPDATE messages SET created = 'yesterday', prompt_tokens = 'many', duration = 'x'",
        "UPDATE messages SET created = 1e999, completion_tokens = -5, duration = -1e999",
        "UPDATE conversations SET created = 'x', updated = 1e300, system = X'00'",
        "UPDATE messages SET model = X'41', provider = 7 WHERE role = 'assistant'",
    ],
)
def test_damaged_messages_are_still_shown_exported_and_continued(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path, statement: str
) -> None:
    first = cortan.run("ask", "--session", "work", "hello there")
    assert first.code == 0, first.stderr
    damage(data_dir, statement)
    for args in READERS:
        result = cortan.run(*args)
        no_internal_error(result.stderr)
        assert result.code == 0, (args, result.stderr)


def test_a_turn_in_a_role_cortan_never_writes_is_not_sent_again(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    """After a question whose answer was empty, the row went to the model in the role it
    held ("wizard"), which an OpenAI server refuses with a 400 on every later turn."""
    assert cortan.run("ask", "--session", "work", "first").code == 0
    assert cortan.run("ask", "--session", "work", "second").code == 0
    damage(
        data_dir,
        "UPDATE messages SET content = '' WHERE id = 2",
        "UPDATE messages SET role = 'wizard' WHERE id = 3",
    )
    result = cortan.run("ask", "--session", "work", "third")
    no_internal_error(result.stderr)
    assert result.code == 0, result.stderr
    sent = [(m["role"], m["content"]) for m in ollama_env.chat_requests[-1].json["messages"]]
    assert sent == [("user", "first\n\nthird")]  # the empty answer is left out
    shown = cortan.run("sessions", "show", "work")
    assert shown.code == 0 and "second" in shown.stdout  # still shown as it is kept


def test_text_that_is_not_utf8_reads_with_replacement_characters(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    assert cortan.run("ask", "--session", "work", "hello there").code == 0
    damage(data_dir, "UPDATE messages SET content = CAST(X'6869FF21' AS TEXT) WHERE role = 'user'")
    result = cortan.run("sessions", "export", "work", "--format", "json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["messages"][0]["content"] == "hi\ufffd!"


# -- the response cache -----------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        "content = X'FF00'",  # a blob: it was handed out as the answer
        "content = CAST(X'68FF' AS TEXT)",  # not UTF-8
        "created = 'x'",  # compared with a float: TypeError
        "provider = X'00', prompt_tokens = 'z'",
    ],
)
def test_a_damaged_cached_answer_is_a_miss_said_once(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path, change: str
) -> None:
    assert cortan.run("ask", "--cache", "hi").code == 0
    damage(data_dir, f"UPDATE response_cache SET {change}")
    result = cortan.run("ask", "--cache", "hi")
    no_internal_error(result.stderr)
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert result.stderr.count("was damaged") == 1, result.stderr
    assert len(ollama_env.chat_requests) == 2  # asked again, not answered from the cache
    again = cortan.run("ask", "--cache", "hi")  # the damaged entry was replaced
    assert "answer from the response cache" in again.stderr
    assert len(ollama_env.chat_requests) == 2


@pytest.mark.parametrize(
    ("statement", "entries"),
    [
        ("UPDATE response_cache SET created = 'x', hits = 'y'", 1),  # text sorts above a time
        ("UPDATE response_cache SET created = 1e300", 1),  # never to expire: swept out
        ("UPDATE response_cache_size SET entries = 'x', bytes = X'00'", 2),
    ],
)
def test_cache_stats_and_writes_go_on_over_damaged_totals(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path, statement: str, entries: int
) -> None:
    assert cortan.run("ask", "--cache", "hi").code == 0
    damage(data_dir, statement)
    for args in (("cache", "stats"), ("cache", "stats", "--json"), ("ask", "--cache", "other")):
        result = cortan.run(*args)
        no_internal_error(result.stderr)
        assert result.code == 0, (args, result.stderr)
    stats = json.loads(cortan.run("cache", "stats", "--json").stdout)
    assert stats["entries"] == entries


def test_an_answer_dated_ahead_of_the_clock_is_aged_out(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    """A year ahead (a clock stepped back since, a hand edit), it was handed out until
    that year had passed, whatever the age limit."""
    assert cortan.run("ask", "--cache", "hi").code == 0
    damage(data_dir, "UPDATE response_cache SET created = created + 365 * 86400")
    result = cortan.run("ask", "--cache", "hi")
    assert result.code == 0, result.stderr
    assert "response cache" not in result.stderr  # a miss, as an expired answer is
    assert len(ollama_env.chat_requests) == 2
    again = cortan.run("ask", "--cache", "hi")  # kept again, dated now
    assert "answer from the response cache" in again.stderr
    assert len(ollama_env.chat_requests) == 2


# -- cortan grants --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE grants SET created = 'x', pattern = X'FF'",  # TypeError
        "UPDATE grants SET created = 1e300, name = CAST(X'FF' AS TEXT)",  # OverflowError
        "UPDATE decisions SET at = 'x', allowed = 'maybe', status = 's', text = X'00'",
    ],
)
def test_damaged_grants_and_decisions_are_still_listed(
    cortan: type[CortanRunner], data_dir: Path, statement: str
) -> None:
    keep_grant(data_dir, "make test")
    damage(data_dir, statement)
    for args in (("grants",), ("grants", "list", "--json"), ("grants", "log", "--json")):
        result = cortan.run(*args)
        no_internal_error(result.stderr)
        assert result.code == 0, (args, result.stderr)
    decisions = json.loads(cortan.run("grants", "log", "--json").stdout)
    assert [d["allowed"] for d in decisions] == ["maybe" not in statement]  # never read as yes


def test_logs_reads_a_line_of_a_huge_message_not_all_of_it(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path, tmp_path: Path
) -> None:
    # Before: 800 MB of memory to list a 100 MB answer put in by hand, of which one
    # line shows. 60 MB here: the old peak passed 450 MB.
    assert cortan.run("ask", "--no-stdin", "hi").code == 0
    damage(data_dir, "UPDATE messages SET content = printf('%.*c', 60000000, 'x')")
    peak = tmp_path / "peak"
    done = subprocess.run(
        [*measured_command(peak), "logs"], capture_output=True, text=True, timeout=60, check=False
    )
    no_internal_error(done.stderr)
    assert done.returncode == 0, done.stderr
    assert "xxxxxxxx" in done.stdout and len(done.stdout) < 2000
    assert int(peak.read_text()) < 250_000  # KiB
