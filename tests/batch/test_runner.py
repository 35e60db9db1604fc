"""The batch runner on the real engine (``App``) over loopback servers, in this process.

Ordering, the bound per host, resuming from the store, stopping (Ctrl-C as a
cancelled task, a run of failures, a store or reader that fails) and what the user
is told. The command line around it is tested in tests/cli/test_batch.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cortan.app import App, make_batch
from cortan.batch.inputs import InputSpec, count_records, read_records
from cortan.batch.items import RequestSpec
from cortan.batch.progress import PlainProgress
from cortan.batch.runner import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, Outcome
from cortan.config.settings import Settings
from cortan.store.jobs import JobStore
from tests.servers import FakeOllama, Reply


class Job:
    """One input file, its job in a store, and everything a run wrote."""

    def __init__(self, tmp_path: Path, settings: Settings, lines: list[str]) -> None:
        self.path = tmp_path / "in.jsonl"
        self.write(lines)
        self.settings = settings
        self.jobs = JobStore.open(tmp_path / "data")
        self.job = self.jobs.start("key", name=None, source=str(self.path))
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.apps: list[App] = []

    def write(self, lines: list[str]) -> None:
        self.path.write_text("".join(line + "\n" for line in lines))

    async def run(self, spec: RequestSpec | None = None, **options: Any) -> Outcome:
        self.out, self.err = io.StringIO(), io.StringIO()
        outcome: Outcome = await self.runner(spec, **options).run()
        return outcome

    def runner(self, spec: RequestSpec | None = None, **options: Any) -> Any:
        app = App.build(self.settings)
        self.apps.append(app)
        input_spec = InputSpec(str(self.path), "jsonl")
        options.setdefault("count_total", lambda: count_records(input_spec, max_bytes=1 << 20))
        return make_batch(
            app,
            self.jobs,
            self.job,
            read_records(input_spec, max_bytes=1 << 20),
            spec or RequestSpec("jsonl"),
            self.out,
            PlainProgress(self.err),
            **options,
        )

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


def prompts(n: int) -> list[str]:
    return [json.dumps({"id": f"q{i}", "prompt": f"p{i}"}) for i in range(n)]


def asked(server: FakeOllama) -> list[str]:
    return [r.json["messages"][-1]["content"] for r in server.chat_requests]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., Job]]:
    made: list[Job] = []

    def make_job(lines: list[str], **settings: Any) -> Job:
        job = Job(tmp_path, Settings(**settings), lines)
        made.append(job)
        return job

    yield make_job
    for job in made:
        for app in job.apps:
            await app.aclose()
        job.jobs.close()


def on(*servers: FakeOllama, parallel: Any = None) -> dict[str, Any]:
    provider: dict[str, Any] = {"kind": "ollama", "hosts": [s.url for s in servers]}
    if parallel is not None:
        provider["parallel"] = parallel
    return {"providers": {"ollama": provider}, "default_model": "ollama:llama3.2"}


async def test_lines_come_out_in_input_order_whatever_order_items_end_in(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    # The first request to arrive (one of the first items: four start at once, three
    # take the slots) is the slowest: the items after it end first and wait for it.
    ollama.queue(Reply(pieces=["slow"], first_byte_delay=0.3), *[Reply(pieces=["fast"])] * 5)
    job = make(prompts(6), **on(ollama, parallel=3))
    outcome = await job.run()
    assert outcome.exit_code == EXIT_OK
    assert [line["id"] for line in job.lines] == [f"q{i}" for i in range(6)]
    assert [line["content"] for line in job.lines[:4]].count("slow") == 1
    assert outcome.tally.done == 6 and outcome.tally.total == 6


async def test_unordered_lines_come_out_as_items_end(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    ollama.queue(Reply(pieces=["slow"], first_byte_delay=0.3), *[Reply(pieces=["fast"])] * 3)
    job = make(prompts(4), **on(ollama, parallel=2))
    await job.run(ordered=False)
    assert job.lines[-1]["content"] == "slow"
    assert job.lines[-1]["id"] in ("q0", "q1", "q2")  # one of the first, written last


async def test_each_host_gets_its_parallel_and_every_host_is_used(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    ollama.default = Reply(pieces=["a", "b"], delay=0.02)
    with FakeOllama() as other:
        other.default = ollama.default
        job = make(prompts(24), **on(ollama, other, parallel=2))
        runner = job.runner()
        assert runner.workers == 4 + 1  # what the two hosts take at once, and one ready
        outcome = await runner.run()
        assert outcome.tally.done == 24
        assert (ollama.peak_in_flight, other.peak_in_flight) == (2, 2)
        assert len(ollama.chat_requests) + len(other.chat_requests) == 24


async def test_a_rerun_asks_nothing_that_committed_and_writes_every_line(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    job = make(prompts(10), **on(ollama, parallel=2))
    first = await job.run(limit=4)
    assert (first.tally.done, first.tally.total) == (4, 4)
    assert sorted(asked(ollama)) == [f"p{i}" for i in range(4)]
    second = await job.run()
    assert (second.tally.kept, second.tally.done) == (4, 6)
    assert sorted(asked(ollama)) == sorted(f"p{i}" for i in range(10))  # none asked twice
    assert [line["id"] for line in job.lines] == [f"q{i}" for i in range(10)]
    third = await job.run()
    assert (third.tally.kept, third.tally.done, third.exit_code) == (10, 0, EXIT_OK)
    assert len(ollama.chat_requests) == 10


async def test_an_item_whose_input_changed_is_asked_again(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    job = make(prompts(3), **on(ollama))
    await job.run()
    lines = prompts(3)
    lines[1] = json.dumps({"id": "q1", "prompt": "changed"})
    job.write(lines)
    outcome = await job.run()
    assert (outcome.tally.kept, outcome.tally.done) == (2, 1)
    assert asked(ollama)[-1] == "changed"


async def test_failed_items_are_asked_again_on_the_next_run(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    lines = prompts(3)
    lines[1] = json.dumps({"id": "q1", "prompt": "p1", "model": "ollama:nosuch"})
    job = make(lines, **on(ollama))
    first = await job.run()
    assert (first.exit_code, first.tally.failed) == (EXIT_SOME_FAILED, 1)
    assert job.lines[1]["error"]["kind"] == "model_not_found"
    assert "line 2: model 'nosuch' is not on Ollama" in job.err.getvalue()
    second = await job.run()  # still missing: asked again, alone
    assert (second.exit_code, second.tally.kept, second.tally.failed) == (EXIT_SOME_FAILED, 2, 1)
    assert sorted(asked(ollama)) == ["p0", "p1", "p1", "p2"]


async def test_bad_input_lines_fail_alone_and_the_job_goes_on(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    job = make(
        ['{"prompt": "a"}', "not json", '{"text": "no prompt"}', '{"prompt": "b"}'], **on(ollama)
    )
    outcome = await job.run()
    assert outcome.exit_code == EXIT_SOME_FAILED
    assert [line["finish_reason"] for line in job.lines] == ["stop", "error", "error", "stop"]
    assert job.lines[1]["error"]["kind"] == "input"
    err = job.err.getvalue().splitlines()
    assert "line 2 is not JSON (Expecting value)" in err
    assert "line 3 has no field 'prompt' (--field names the text)" in err
    assert outcome.tally.failures == ["line 2 (input)", "line 3 (input)"]


async def test_a_run_of_failures_stops_the_job(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    ollama.default = Reply(status=400, error="refused")
    job = make(prompts(50), **on(ollama))
    outcome = await job.run(max_failures=3)
    assert outcome.exit_code == EXIT_FAILURE
    assert outcome.stopped == "stopped after 3 items failed in a row"
    assert len(ollama.chat_requests) == 3
    assert outcome.tally.total == 50


async def test_cancelled_the_job_stops_at_once_and_commits_nothing_in_flight(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    ollama.default = Reply(pieces=["x"], first_byte_delay=0.05)
    job = make(prompts(40), **on(ollama, parallel=2))
    runner = job.runner()
    task = asyncio.create_task(runner.run())
    await asyncio.to_thread(ollama.wait_requests, 6)
    task.cancel()  # what Ctrl-C does to the main task
    outcome = await task
    assert outcome.exit_code == EXIT_INTERRUPTED
    assert outcome.stopped == "interrupted"
    done, failed = job.jobs.count(job.job.id)
    assert failed == 0
    assert done == outcome.tally.done
    assert outcome.tally.done < len(ollama.chat_requests)  # those in flight were not kept
    assert len(job.lines) <= done
    # Nothing of the job is left running.
    assert await asyncio.to_thread(lambda: _wait(lambda: ollama.in_flight == 0))


def _wait(predicate: Callable[[], bool]) -> bool:
    from tests.conftest import wait_until

    return wait_until(predicate, 5)


async def test_a_store_that_fails_stops_the_job_with_its_sentence(
    make: Callable[..., Job], ollama: FakeOllama, tmp_path: Path
) -> None:
    job = make(prompts(5), **on(ollama))
    conn = sqlite3.connect(tmp_path / "data" / "cortan.db")
    conn.execute("DROP TABLE batch_items")
    conn.close()
    outcome = await job.run()
    assert outcome.exit_code == EXIT_FAILURE
    assert outcome.stopped is not None
    assert outcome.stopped.startswith("the session store ")
    assert job.lines == []  # nothing written that was not committed


async def test_a_reader_that_left_ends_the_job_quietly(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    job = make(prompts(5), **on(ollama))
    job.out = Gone()
    outcome = await job.runner().run()
    assert outcome.quiet
    assert outcome.exit_code == 141  # as `cortan ask | head` (docs/scripting.md), not 1


async def test_an_item_schema_is_sent_and_its_answer_checked(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    lines = [json.dumps({"prompt": f"p{i}", "schema": schema}) for i in range(2)]
    lines.append(json.dumps({"prompt": "bad", "schema": {"type": 5}}))
    ollama.default = Reply(pieces=['{"n": 4}'])
    job = make(lines, **on(ollama))
    outcome = await job.run()
    assert outcome.exit_code == EXIT_SOME_FAILED  # the third item's schema is no schema
    out = [json.loads(line) for line in job.out.getvalue().splitlines()]
    assert [o.get("data") for o in out[:2]] == [{"n": 4}, {"n": 4}]
    assert out[2]["error"]["kind"] == "input" and "JSON Schema" in out[2]["error"]["message"]
    assert all(r.json["format"] == schema for r in ollama.chat_requests)
    assert len(ollama.chat_requests) == 2


async def test_progress_lines_come_while_it_runs(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    ollama.default = Reply(pieces=["a", "b", "c"], delay=0.05)
    job = make(prompts(4), **on(ollama))
    await job.run(tick=0.05)
    progress = [line for line in job.err.getvalue().splitlines() if line.startswith("batch: ")]
    assert progress, job.err.getvalue()
    assert progress[-1].startswith("batch: ") and "/4 items" in progress[-1]


async def test_notices_are_shown_now_and_then_with_the_item(
    make: Callable[..., Job], ollama: FakeOllama
) -> None:
    # Every item's model is missing: each falls back, and each fallback is a notice.
    settings = {**on(ollama), "default_model": "ollama:nosuch"}
    job = make(prompts(4), **settings, fallback=["ollama:llama3.2"])
    outcome = await job.run()
    assert outcome.tally.done == 4
    shown = [line for line in job.err.getvalue().splitlines() if "answered by" in line]
    assert len(shown) == 1
    assert re.match(r"line \d: ollama:nosuch failed \(model 'nosuch' is not on Ollama", shown[0])
    assert "(3 more notices not shown)" in job.err.getvalue()


async def test_one_hidden_notice_is_one(make: Callable[..., Job], ollama: FakeOllama) -> None:
    settings = {**on(ollama), "default_model": "ollama:nosuch"}
    job = make(prompts(2), **settings, fallback=["ollama:llama3.2"])
    await job.run()
    assert "(1 more notice not shown)" in job.err.getvalue()
