"""Which job a command runs: the key that finds it again, and resuming or restarting it.

Layer: batch (a front end). A job is known by its input (the file's real path, or
stdin) and everything that shapes its requests, so running the same command again
finds the same job and resumes it, while another template or model over the same
file is another job. ``--job NAME`` names a job outright (stdin cannot be recognised
otherwise). The job and its items live in the store (:class:`cortan.store.jobs.JobStore`).
One process runs a job at a time (:func:`running`): the same command started twice
would ask every item twice and write one output over the other.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from typing import NamedTuple

from cortan.batch.items import RequestSpec
from cortan.batch.template import as_text
from cortan.core.errors import CortanError, UsageError
from cortan.store.jobs import Job, JobCounts, JobStore

#: Seconds without a beat after which a job's runner counts as gone (its pid reused).
SILENT_AFTER = 120.0
#: Seconds between the beats of the process that runs a job.
BEAT_EVERY = 20.0


class Opened(NamedTuple):
    """The job to run, and what an earlier run of it left (None: nothing to resume)."""

    job: Job
    earlier: JobCounts | None


def make_job_key(source: str, input_spec: object, spec: RequestSpec) -> str:
    """Which job a command runs: a hash of its input and of what shapes every request.

    Running the same command again finds the same job (and resumes it); another
    template, model or input is another job, so two jobs over one file keep apart.
    How it runs (workers, output, cache, limit) is not part of it.
    """
    template = spec.template.text if spec.template is not None else None
    shape = [
        source,
        repr(input_spec),
        spec.format,
        template,
        spec.field,
        spec.instruction,
        spec.model,
        spec.system,
        sorted([k, as_text(v)] for k, v in spec.options),
        spec.allow_fallback,
    ]
    text = json.dumps(shape, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


@contextlib.contextmanager
def open_job(
    jobs: JobStore,
    key: str,
    *,
    name: str | None,
    source: str,
    resume: bool = False,
    restart: bool = False,
) -> Iterator[Opened]:
    """The job for ``key`` (resumed, restarted or made now), run by this process alone
    while the block lasts.

    ``resume`` insists on an earlier job (a usage error without one); ``restart``
    forgets its items, once no other process runs it.
    """
    found = jobs.get(key)
    if found is None and resume:
        raise UsageError("there is no earlier job for this command to resume")
    job = jobs.start(key, name=name, source=source)
    with running(jobs, job):
        if found is not None and restart:
            jobs.forget_items(job.id)
        counts = jobs.count(job.id)
        yield Opened(job, counts if counts.done or counts.failed else None)


@contextlib.contextmanager
def running(jobs: JobStore, job: Job) -> Iterator[None]:
    """This process runs ``job`` until the block ends; another process running it is an error."""
    pid = os.getpid()
    other = jobs.claim(job.id, pid, is_alive, silent_after=SILENT_AFTER)
    if other is not None:
        raise CortanError(
            f"this job is already running in process {other}: wait for it to end, or stop it "
            "first (Ctrl-C there); then run the command again to resume"
        )
    try:
        yield
    finally:
        with contextlib.suppress(CortanError):  # a store gone bad: the next run sees the pid gone
            jobs.release(job.id, pid)


def is_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one killed with ``kill -9`` does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: it exists
        return True
    return True
