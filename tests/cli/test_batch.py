"""`cortan batch` and `cortan cache` end to end: the installed command against loopback servers.

What a user sees: JSON lines on stdout (or -o), the summary and one sentence per
failed item on stderr, the exit codes of docs/scripting.md, a job that survives
Ctrl-C and ``kill -9`` and resumes without asking any committed item twice.
"""

from __future__ import annotations

import json
import re
import resource
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, wait_until
from tests.servers import FakeOllama, Reply


def jsonl(path: Path, n: int, start: int = 0) -> Path:
    items = (json.dumps({"id": f"q{i}", "prompt": f"p{i}"}) for i in range(start, start + n))
    path.write_text("".join(item + "\n" for item in items))
    return path


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def asked(server: FakeOllama) -> Counter[str]:
    return Counter(r.json["messages"][-1]["content"] for r in server.chat_requests)


def committed(data: Path) -> set[int]:
    conn = sqlite3.connect(data / "cortan.db")
    try:
        rows = conn.execute("SELECT position FROM batch_items WHERE status = 'done'").fetchall()
    finally:
        conn.close()
    return {row[0] for row in rows}


def interruptible(cortan: type[CortanRunner], *args: str) -> subprocess.Popen[bytes]:
    # SIGINT is inherited ignored by a background process; the test run restores it.
    return cortan.popen(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@contextmanager
def started(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """``proc``, killed and reaped however the test ends (its stderr told if it failed)."""
    try:
        yield proc
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
        print("cortan's stderr:", err.decode("utf-8", "replace"))
        raise


def wait_asked(server: FakeOllama, n: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until ``server`` was asked ``n`` chats, or say why the batch did not get there."""
    assert server.wait_requests(n, timeout=30), f"cortan exited {proc.poll()}"


def test_json_lines_in_answers_out_in_order(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    result = cortan.run("batch", str(jsonl(tmp_path / "in.jsonl", 5)))
    assert result.code == 0, result.stderr
    out = lines(result.stdout)
    assert [line["id"] for line in out] == [f"q{i}" for i in range(5)]
    assert {line["content"] for line in out} == {"Hello, world!"}
    assert out[0]["model"] == "llama3.2:latest" and out[0]["cached"] is False
    assert sorted(asked(ollama_env)) == [f"p{i}" for i in range(5)]
    assert result.stderr.startswith("batch done: 5 answered in ")
    assert "Traceback" not in result.stderr


def test_the_counts_read_as_the_docs_show_them(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """`batch: resuming: 1 items answered…` and `· 1200 tokens`: docs/batch.md shows
    `9,000 items`, `1,204,512 tokens`."""
    source = jsonl(tmp_path / "in.jsonl", 2)
    ollama_env.queue(
        Reply(prompt_tokens=1200, completion_tokens=1200), Reply(status=400, error="no")
    )
    first = cortan.run("batch", str(source))
    assert first.code == 4, first.stderr
    assert "\nbatch done: 1 answered, 1 failed in " in first.stderr
    assert re.search(r" · 1,\d{3} tokens\n", first.stderr), first.stderr
    again = cortan.run("batch", str(source))
    assert again.code == 0, again.stderr
    assert "batch: resuming: 1 item answered by an earlier run, 1 failed (asked again)\n" in (
        again.stderr
    )


def test_lines_from_stdin_with_an_instruction(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("batch", "-", "--prompt", "Translate to French", input="cat\n\ndog\n")
    assert result.code == 0, result.stderr
    assert [line["id"] for line in lines(result.stdout)] == [1, 3]
    sent = [r.json["messages"][-1]["content"] for r in ollama_env.chat_requests]
    assert sorted(sent) == [
        "Input:\n```\ncat\n```\n\nTranslate to French",
        "Input:\n```\ndog\n```\n\nTranslate to French",
    ]


def test_a_csv_with_a_template_to_a_file(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    source = tmp_path / "reviews.csv"
    source.write_text('id,text\nr1,"great, really"\nr2,awful\n')
    out = tmp_path / "out.jsonl"
    result = cortan.run("batch", str(source), "-t", "Sentiment of: {text}", "-o", str(out))
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert [line["id"] for line in lines(out.read_text())] == ["r1", "r2"]
    assert f"output in {out}" in result.stderr
    assert sorted(asked(ollama_env)) == ["Sentiment of: awful", "Sentiment of: great, really"]


def test_a_bad_line_fails_alone_with_one_sentence_and_exit_4(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n{"prompt": \n{"prompt": "c"}\n')
    result = cortan.run("batch", str(source))
    assert result.code == 4, result.stderr
    out = lines(result.stdout)
    assert [line["finish_reason"] for line in out] == ["stop", "error", "stop"]
    assert out[1]["error"]["kind"] == "input"
    assert "line 2 is not JSON (Expecting value)\n" in result.stderr
    assert "failed: line 2 (input); their output lines say why" in result.stderr
    assert "Traceback" not in result.stderr
    # Asked again as it is, the line fails the same way: the way on is to fix it.
    assert "fix the input's failed items, then run the same command again" in result.stderr
    assert "to ask the failed items again" not in result.stderr


def test_hostile_input_costs_its_item_and_stays_bounded(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    source = tmp_path / "in.txt"
    with source.open("wb") as file:
        file.write(b"fine\n")
        file.write(b"x" * (8 << 20) + b"\n")  # 8 MiB in one line, over max_input_bytes
        file.write(b"\xff\xfe\x00binary\n")
        file.write(b"\x1b[2Jstill fine\n")
    started = time.monotonic()
    result = cortan.run("batch", str(source))
    assert time.monotonic() - started < 20
    assert result.code == 4, result.stderr
    out = lines(result.stdout)
    assert [line["finish_reason"] for line in out] == ["stop", "error", "error", "stop"]
    assert "line 2 is longer than 1 MiB (setting max_input_bytes)" in result.stderr
    assert "line 3 is not UTF-8 text" in result.stderr
    assert ollama_env.chat_requests[-1].json["messages"][-1]["content"] == "[2Jstill fine"


def test_usage_errors_are_one_sentence_and_exit_2(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text("id,text\n1,x\n")
    cases = [
        (["batch", str(csv)], "a CSV needs --template"),
        (["batch", str(csv), "-t", "{body}"], "has no column 'body'"),
        (["batch", str(csv), "-t", "{text:>3}"], "has a format the batch does not apply"),
        (["batch", str(csv), "-o", str(csv), "--field", "text"], "is the input itself"),
        (["batch", str(tmp_path / "nope.jsonl")], "nope.jsonl: there is no such file\n"),
        (
            ["batch", str(csv), "--template-file", str(tmp_path / "t.txt")],
            f"cannot read the template {tmp_path / 't.txt'}: there is no such file\n",
        ),
        (["batch", str(csv), "--field", "text", "--resume"], "no earlier job"),
        (["batch", "-", "--option", "temperature"], "is not key=value"),  # as ask says it
    ]
    for args, sentence in cases:
        result = cortan.run(*args)
        assert result.code == 2, (args, result.stderr)
        assert_one_sentence(result.stderr)
        assert sentence in result.stderr, (args, result.stderr)
    assert ollama_env.chat_requests == []


def test_killed_then_rerun_no_committed_item_is_asked_again_and_none_is_lost(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.default = Reply(pieces=["a", "b"], delay=0.02)
    source = jsonl(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out.jsonl"
    with started(cortan.popen("batch", str(source), "-o", str(out))) as proc:
        wait_asked(ollama_env, 12, proc)
        proc.kill()
        proc.communicate(timeout=10)
    data = tmp_path / "data"
    kept = committed(data)
    assert kept, "some items committed before the kill"
    before = asked(ollama_env)
    result = cortan.run("batch", str(source), "-o", str(out))
    assert result.code == 0, result.stderr
    assert f"batch: resuming: {len(kept)} items answered by an earlier run" in result.stderr
    after = asked(ollama_env)
    for position in kept:  # committed: asked exactly once, before the kill
        assert after[f"p{position}"] == 1 == before[f"p{position}"]
    assert set(after) == {f"p{i}" for i in range(30)}  # none lost
    assert [line["id"] for line in lines(out.read_text())] == [f"q{i}" for i in range(30)]
    assert committed(data) == set(range(30))


def test_ctrl_c_stops_with_a_summary_and_the_rerun_finishes(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.default = Reply(pieces=["a"], first_byte_delay=0.05)
    source = jsonl(tmp_path / "in.jsonl", 40)
    with started(interruptible(cortan, "batch", str(source))) as proc:
        wait_asked(ollama_env, 5, proc)
        stopped = cortan.interrupt(proc)
    assert stopped.code == 130, stopped.stderr
    assert "batch stopped: " in stopped.stderr
    assert " not run in " in stopped.stderr
    assert "interrupted: run the same command again to resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    written = lines(stopped.stdout)
    assert [line["id"] for line in written] == [f"q{i}" for i in range(len(written))]
    assert wait_until(lambda: ollama_env.in_flight == 0)
    result = cortan.run("batch", str(source))
    assert result.code == 0, result.stderr
    assert len(lines(result.stdout)) == 40


def test_ctrl_c_twice_still_says_how_to_go_on(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """A second Ctrl-C during the first one's clean stop (an impatient user presses it
    twice) ended the batch with nothing on stderr: no summary, no word of resuming."""
    ollama_env.default = Reply(pieces=["a", "b"], delay=0.05)
    source = jsonl(tmp_path / "in.jsonl", 40)
    with started(interruptible(cortan, "batch", str(source))) as proc:
        wait_asked(ollama_env, 3, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.002)  # within the clean stop the first one began
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    stderr = err.decode()
    assert proc.returncode == 130, stderr
    assert "batch stopped" in stderr and "run the same command again" in stderr, stderr
    assert "Traceback" not in stderr
    result = cortan.run("batch", str(source))
    assert result.code == 0, result.stderr
    assert [line["id"] for line in lines(result.stdout)] == [f"q{i}" for i in range(40)]


def test_sigterm_stops_cleanly_with_its_own_code(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.default = Reply(pieces=["a"], first_byte_delay=0.05)
    with started(cortan.popen("batch", str(jsonl(tmp_path / "in.jsonl", 40)))) as proc:
        wait_asked(ollama_env, 3, proc)
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + 15
    assert "batch stopped: " in err.decode()


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for a thousand connections at each end (the fake server runs in this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= 4096:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"needs 4096 open files (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("many_files")
def test_a_thousand_requests_at_once_stop_at_once_on_sigterm(
    cortan: type[CortanRunner], ollama: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    """``parallel = 1024``: httpx's pool held 100 connections and queued the rest, and
    every cancelled request scanned that queue against every connection: SIGTERM took
    ~48 s to stop, and no more than 100 requests were ever in flight."""
    ollama.default = Reply(pieces=["a"], first_byte_delay=60)
    config_file.write_text(
        'default_model = "ollama:llama3.2"\n'
        f'[providers.ollama]\nkind = "ollama"\nhosts = ["{ollama.url}"]\nparallel = 1024\n'
    )
    source = jsonl(tmp_path / "in.jsonl", 1100)
    with started(cortan.popen("batch", str(source), "-j", "1024", "-q")) as proc:
        wait_asked(ollama, 100, proc)
        everything = ollama.wait_in_flight(1024, timeout=20)
        start = time.monotonic()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - start
    assert proc.returncode == 128 + 15, err.decode()
    assert took < 5, f"took {took:.1f} s to stop"
    assert everything, f"at most {ollama.peak_in_flight} requests in flight, not 1024"


def test_several_hosts_each_get_their_parallel(
    cortan: type[CortanRunner], ollama: FakeOllama, config_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ollama.default = Reply(pieces=["a", "b"], delay=0.03)
    with FakeOllama() as other:
        other.default = ollama.default
        config_file.write_text(
            'default_model = "ollama:llama3.2"\n'
            "[providers.ollama]\n"
            'kind = "ollama"\n'
            f'hosts = ["{ollama.url}", "{other.url}"]\n'
            "parallel = 2\n"
        )
        result = cortan.run("batch", str(jsonl(tmp_path / "in.jsonl", 20)))
        assert result.code == 0, result.stderr
        assert (ollama.peak_in_flight, other.peak_in_flight) == (2, 2)
        assert len(ollama.chat_requests) + len(other.chat_requests) == 20


def test_the_cache_answers_a_rerun_and_says_so(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    source = jsonl(tmp_path / "in.jsonl", 3)
    first = cortan.run("batch", str(source), "--cache")
    assert first.code == 0, first.stderr
    again = cortan.run("batch", str(source), "--cache", "--restart")  # ask every item again
    assert again.code == 0, again.stderr
    assert [line["cached"] for line in lines(again.stdout)] == [True] * 3
    assert "3 answered (3 from the cache)" in again.stderr
    assert len(ollama_env.chat_requests) == 3
    stats = cortan.run("cache", "stats", "--json")
    assert stats.code == 0, stats.stderr
    figures = json.loads(stats.stdout)
    assert (figures["entries"], figures["hits"]) == (3, 3)
    cleared = cortan.run("cache", "clear")
    assert cleared.code == 0 and "forgot 3 cached answers" in cleared.stderr
    assert json.loads(cortan.run("cache", "stats", "--json").stdout)["entries"] == 0


def test_ask_cache_hit_is_a_dim_notice_and_a_json_field(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    assert cortan.run("ask", "--cache", "hi").code == 0
    hit = cortan.run("ask", "--cache", "hi")
    assert (hit.code, hit.stdout) == (0, "Hello, world!\n")
    assert "answer from the response cache" in hit.stderr
    report = json.loads(cortan.run("ask", "--cache", "--json", "hi").stdout)
    assert report["cached"] is True
    plain = json.loads(cortan.run("ask", "--json", "hi").stdout)
    assert plain["cached"] is False
    assert len(ollama_env.chat_requests) == 2
    cleared = cortan.run("cache", "clear", "-m", "llama3.2:latest")
    assert cleared.code == 0, cleared.stderr
    assert "forgot 1 cached answer of ollama:llama3.2:latest\n" in cleared.stderr


def test_cache_commands_with_no_store(cortan: type[CortanRunner]) -> None:
    stats = cortan.run("cache", "stats")
    assert stats.code == 0, stats.stderr
    assert "entries          0" in stats.stdout
    assert "not created yet" in stats.stdout
    assert cortan.run("cache", "clear").code == 0


def test_log_stores_each_exchange_as_its_own_conversation(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    source = jsonl(tmp_path / "in.jsonl", 3)
    assert cortan.run("batch", str(source)).code == 0
    listed = cortan.run("sessions", "list", "--json")
    assert json.loads(listed.stdout or "[]") == []  # by default a batch makes no conversations
    assert cortan.run("batch", str(source), "--log", "--restart").code == 0
    conversations = json.loads(cortan.run("sessions", "list", "--json").stdout)
    assert len(conversations) == 3


def test_a_folder_of_files(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("alpha\n")
    (folder / "sub" / "b.md").write_text("beta\n")
    result = cortan.run("batch", str(folder), "-p", "Summarise", "--limit", "1")
    assert result.code == 0, result.stderr
    assert [line["id"] for line in lines(result.stdout)] == ["a.md"]
    assert asked(ollama_env) == Counter({"File a.md:\n```\nalpha\n```\n\nSummarise": 1})


def test_the_plain_progress_lines_on_a_log(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.default = Reply(pieces=["a", "b"], delay=0.05)
    env = {"CORTAN_BATCH__PROGRESS_INTERVAL": "0.1"}
    result = cortan.run("batch", str(jsonl(tmp_path / "in.jsonl", 5)), env=env)
    assert result.code == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("batch: ")]
    assert progress and all("/5 items" in line for line in progress), result.stderr


def test_every_failure_in_a_row_stops_the_job(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    result = cortan.run("batch", str(jsonl(tmp_path / "in.jsonl", 30)), "-m", "ollama:nosuch")
    assert result.code == 1, result.stderr
    assert_one_sentence(result.stderr)
    assert (
        "cortan: error: stopped after 10 items failed in a row; run the same command again "
        "to resume" in result.stderr
    )
    assert len(ollama_env.chat_requests) < 30


def test_the_same_job_twice_at_once_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.default = Reply(pieces=["a"], first_byte_delay=0.05)
    source = jsonl(tmp_path / "in.jsonl", 40)
    with started(cortan.popen("batch", str(source))) as first:
        wait_asked(ollama_env, 2, first)
        second = cortan.run("batch", str(source))
        assert second.code == 1, second.stderr
        assert_one_sentence(second.stderr)
        assert f"this job is already running in process {first.pid}" in second.stderr
        first.terminate()
        first.communicate(timeout=20)
    again = cortan.run("batch", str(source))  # the first one stopped: this one resumes
    assert again.code == 0, again.stderr
