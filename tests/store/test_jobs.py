"""Batch jobs in the store: found by key, items committed one by one, forgotten on restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortan.store.jobs import ItemState, JobStore


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore.open(tmp_path / "data") as store:
        yield store


def test_a_job_is_found_by_its_key(jobs: JobStore) -> None:
    assert jobs.get("k") is None
    job = jobs.start("k", name="nightly", source="/data/in.jsonl")
    assert (job.key, job.name, job.source) == ("k", "nightly", "/data/in.jsonl")
    again = jobs.start("k", name="nightly", source="/data/in.jsonl")
    assert again.id == job.id
    assert jobs.start("other", name=None, source="stdin").id != job.id


def test_items_are_committed_and_read_back(jobs: JobStore) -> None:
    job = jobs.start("k", name=None, source="stdin")
    assert jobs.get_item(job.id, 0) is None
    jobs.record(job.id, 0, b"fp0", "done", '{"id": 1}')
    jobs.record(job.id, 1, b"fp1", "failed", '{"id": 2}')
    assert jobs.get_item(job.id, 0) == ItemState(b"fp0", "done", '{"id": 1}')
    assert jobs.count(job.id) == (1, 1)
    jobs.record(job.id, 1, b"fp1", "done", '{"id": 2, "ok": true}')  # asked again: replaced
    assert jobs.count(job.id) == (2, 0)


def test_a_restart_forgets_the_items_of_one_job(jobs: JobStore) -> None:
    first = jobs.start("a", name=None, source="stdin")
    second = jobs.start("b", name=None, source="stdin")
    for job in (first, second):
        jobs.record(job.id, 0, b"f", "done", "{}")
    assert jobs.forget_items(first.id) == 1
    assert jobs.count(first.id) == (0, 0)
    assert jobs.count(second.id) == (1, 0)


def test_two_connections_see_each_others_commits(tmp_path: Path) -> None:
    with JobStore.open(tmp_path / "d") as one, JobStore.open(tmp_path / "d") as two:
        job = one.start("k", name=None, source="stdin")
        one.record(job.id, 5, b"f", "done", "{}")
        assert two.get_item(job.id, 5) is not None
