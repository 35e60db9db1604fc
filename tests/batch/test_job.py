"""Which job a command runs: its key, and resuming or restarting it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.batch.items import RequestSpec
from cortan.batch.job import make_job_key, open_job
from cortan.batch.template import Template
from cortan.core.errors import UsageError
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
    first = open_job(jobs, "k", name=None, source="/in.jsonl")
    assert first.earlier is None
    assert open_job(jobs, "k", name=None, source="/in.jsonl").earlier is None  # nothing ran
    jobs.record(first.job.id, 0, b"f", "done", "{}")
    jobs.record(first.job.id, 1, b"f", "failed", "{}")
    again = open_job(jobs, "k", name=None, source="/in.jsonl", resume=True)
    assert again.job.id == first.job.id
    assert again.earlier == JobCounts(1, 1)


def test_restart_forgets_and_resume_needs_a_job(jobs: JobStore) -> None:
    with pytest.raises(UsageError, match="no earlier job for this command to resume"):
        open_job(jobs, "k", name=None, source="stdin", resume=True)
    job = open_job(jobs, "k", name=None, source="stdin").job
    jobs.record(job.id, 0, b"f", "done", "{}")
    restarted = open_job(jobs, "k", name=None, source="stdin", restart=True)
    assert restarted.earlier is None
    assert jobs.count(job.id) == (0, 0)
