"""Which job a command runs: its key, and resuming or restarting it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.batch.items import RequestSpec
from cortan.batch.job import is_alive, make_job_key, open_job
from cortan.batch.template import Template
from cortan.core.errors import CortanError, UsageError
from cortan.store.jobs import JobCounts, JobStore


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore.open(tmp_path / "data") as store:
        yield store


def test_the_job_key_follows_what_shapes_requests_not_how_they_run() -> None:
    spec = RequestSpec("jsonl", model="m")
    key = make_job_key("/in.jsonl", ("jsonl",), spec)
    assert key == make_job_key("/in.jsonl", ("jsonl",), spec._replace(cache=True))
    assert key != make_job_key("/other.jsonl", ("jsonl",), spec)
    assert key != make_job_key("/in.jsonl", ("jsonl",), spec._replace(model="n"))
    assert key != make_job_key("/in.jsonl", ("jsonl",), spec._replace(template=Template("{x}")))


def test_a_new_job_is_made_and_a_known_one_resumed(jobs: JobStore) -> None:
    with open_job(jobs, "k", name=None, source="/in.jsonl") as first:
        assert first.earlier is None
    with open_job(jobs, "k", name=None, source="/in.jsonl") as again:
        assert again.earlier is None  # nothing ran
    jobs.record(first.job.id, 0, b"f", "done", "{}")
    jobs.record(first.job.id, 1, b"f", "failed", "{}")
    with open_job(jobs, "k", name=None, source="/in.jsonl", resume=True) as resumed:
        assert resumed.job.id == first.job.id
        assert resumed.earlier == JobCounts(1, 1)


def test_restart_forgets_and_resume_needs_a_job(jobs: JobStore) -> None:
    with (
        pytest.raises(UsageError, match="no earlier job for this command to resume"),
        open_job(jobs, "k", name=None, source="stdin", resume=True),
    ):
        pass
    with open_job(jobs, "k", name=None, source="stdin") as opened:
        jobs.record(opened.job.id, 0, b"f", "done", "{}")
    with open_job(jobs, "k", name=None, source="stdin", restart=True) as restarted:
        assert restarted.earlier is None
        assert jobs.count(opened.job.id) == (0, 0)


def test_one_process_runs_a_job_at_a_time(jobs: JobStore, tmp_path: Path) -> None:
    with open_job(jobs, "k", name=None, source="stdin") as opened:
        jobs.record(opened.job.id, 0, b"f", "done", "{}")
        # Another process (another connection, as pid 1, which is alive) is refused.
        with JobStore.open(tmp_path / "data") as other:
            assert other.claim(opened.job.id, 1, is_alive, silent_after=60) == os.getpid()
    # Once it ended, a run as pid 1 takes the job; then this process is refused.
    with JobStore.open(tmp_path / "data") as other:
        assert other.claim(opened.job.id, 1, is_alive, silent_after=60) is None
    with (
        pytest.raises(CortanError, match="already running in process 1"),
        open_job(jobs, "k", name=None, source="stdin", restart=True),
    ):
        pass
    assert jobs.count(opened.job.id) == (1, 0)  # the refused restart forgot nothing


def test_a_runner_killed_with_sigkill_does_not_hold_the_job(jobs: JobStore) -> None:
    job = jobs.start("k", name=None, source="stdin")
    assert (
        jobs.claim(job.id, 4_000_000, is_alive, silent_after=60) is None
    )  # a pid that does not exist
    with open_job(jobs, "k", name=None, source="stdin") as opened:  # taken over
        assert opened.job.id == job.id
    assert not is_alive(4_000_000) and is_alive(os.getpid())


def test_a_runner_that_stopped_beating_does_not_hold_the_job(tmp_path: Path) -> None:
    now = [1000.0]
    with JobStore.open(tmp_path / "d", clock=lambda: now[0]) as jobs:
        job = jobs.start("k", name=None, source="stdin")
        assert jobs.claim(job.id, 1, is_alive, silent_after=120) is None  # pid 1: alive
        now[0] += 100
        jobs.beat(job.id, 1)
        now[0] += 100
        assert jobs.claim(job.id, os.getpid(), is_alive, silent_after=120) == 1  # it beat
        now[0] += 21
        # Pid 1 lives, but no cortan behind it has beaten for 121 s: its pid was reused.
        assert jobs.claim(job.id, os.getpid(), is_alive, silent_after=120) is None
