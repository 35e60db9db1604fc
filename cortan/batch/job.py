"""Which job a command runs: the key that finds it again, and resuming or restarting it.

Layer: batch (a front end). A job is known by its input (the file's real path, or
stdin) and everything that shapes its requests, so running the same command again
finds the same job and resumes it, while another template or model over the same
file is another job. ``--job NAME`` names a job outright (stdin cannot be recognised
otherwise). The job and its items live in the store (:class:`cortan.store.jobs.JobStore`).
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from cortan.batch.items import RequestSpec
from cortan.batch.template import as_text
from cortan.core.errors import UsageError
from cortan.store.jobs import Job, JobCounts, JobStore


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


def open_job(
    jobs: JobStore,
    key: str,
    *,
    name: str | None,
    source: str,
    resume: bool = False,
    restart: bool = False,
) -> Opened:
    """The job for ``key``: resumed, restarted (its items forgotten), or made now.

    ``resume`` insists on an earlier job (a usage error without one).
    """
    found = jobs.get(key)
    if found is None and resume:
        raise UsageError("there is no earlier job for this command to resume")
    job = jobs.start(key, name=name, source=source)
    if found is None:
        return Opened(job, None)
    if restart:
        jobs.forget_items(job.id)
        return Opened(job, None)
    counts = jobs.count(job.id)
    return Opened(job, counts if counts.done or counts.failed else None)
