"""Progress of inputs: GetInputsAddJob, ListInputsAddJobs, CancelInputsAddJob, GetInputCount.

A job row holds what PostInputs knew at once (the items it rejected, counted as failed);
everything else is derived from the inputs carrying the job's id, so a job's progress is
always the inputs' current state. The official SDK polls GetInputsAddJob until
``pending_count`` and ``in_progress_count`` are both 0.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from .common import app_pk, not_found, page_window, timestamp
from .downloads import FAILED, IN_PROGRESS, PENDING, SUCCESS
from .rpc import CallContext, rpc, status
from .store import now

_CANCELLED = status_code_pb2.JOB_CANCELLED


def record_job(db: sqlite3.Connection, server: Any, pk: int, job_id: str, rejected: int,
               stamp: float) -> None:
    """Create job ``job_id`` or merge into it (inside a write): ``rejected`` more failures."""
    row = db.execute("SELECT proto FROM inputs_add_jobs WHERE app_pk=? AND id=?",
                     (pk, job_id)).fetchone()
    ts = timestamp(stamp)
    if row is None:
        job = resources_pb2.InputsAddJob(id=job_id, created_at=ts, modified_at=ts)
        job.progress.failed_count = rejected
        seq = server.store.next_seq(db, "inputs_add_jobs")
        db.execute("INSERT INTO inputs_add_jobs(app_pk, id, proto, seq, created_at) "
                   "VALUES (?,?,?,?,?)", (pk, job_id, job.SerializeToString(), seq, stamp))
        return
    job = resources_pb2.InputsAddJob.FromString(row[0])
    job.progress.failed_count += rejected
    job.modified_at.CopyFrom(ts)
    db.execute("UPDATE inputs_add_jobs SET proto=? WHERE app_pk=? AND id=?",
               (job.SerializeToString(), pk, job_id))


def _with_progress(db: sqlite3.Connection, pk: int,
                   job: resources_pb2.InputsAddJob) -> resources_pb2.InputsAddJob:
    counts = dict(db.execute(
        "SELECT status, COUNT(*) FROM inputs WHERE app_pk=? AND job_id=? GROUP BY status",
        (pk, job.id)).fetchall())
    progress = job.progress
    progress.pending_count = counts.get(PENDING, 0)
    progress.in_progress_count = counts.get(IN_PROGRESS, 0)
    progress.success_count = counts.get(SUCCESS, 0)
    progress.failed_count += sum(n for code, n in counts.items()
                                 if code not in (PENDING, IN_PROGRESS, SUCCESS))
    if job.status.code != _CANCELLED:
        busy = progress.pending_count or progress.in_progress_count
        job.status.CopyFrom(status(status_code_pb2.JOB_RUNNING if busy
                                   else status_code_pb2.JOB_COMPLETED))
    return job


def _job(db: sqlite3.Connection, pk: int, job_id: str) -> resources_pb2.InputsAddJob:
    row = db.execute("SELECT proto FROM inputs_add_jobs WHERE app_pk=? AND id=?",
                     (pk, job_id)).fetchone()
    if row is None:
        raise not_found("inputs add job", job_id)
    return resources_pb2.InputsAddJob.FromString(row[0])


@rpc("GetInputsAddJob")
def get_inputs_add_job(
    ctx: CallContext, req: service_pb2.GetInputsAddJobRequest,
) -> service_pb2.SingleInputsAddJobResponse:
    """A job with its progress counts derived from its inputs."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    return service_pb2.SingleInputsAddJobResponse(
        inputs_add_job=_with_progress(db, pk, _job(db, pk, req.id)))


@rpc("ListInputsAddJobs")
def list_inputs_add_jobs(
    ctx: CallContext, req: service_pb2.ListInputsAddJobsRequest,
) -> service_pb2.MultiInputsAddJobResponse:
    """The app's jobs in creation order, paged, with progress."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    limit, offset = page_window(req)
    rows = db.execute("SELECT proto FROM inputs_add_jobs WHERE app_pk=? ORDER BY seq "
                      "LIMIT ? OFFSET ?", (pk, limit, offset)).fetchall()
    return service_pb2.MultiInputsAddJobResponse(inputs_add_jobs=[
        _with_progress(db, pk, resources_pb2.InputsAddJob.FromString(r[0])) for r in rows])


@rpc("CancelInputsAddJob")
def cancel_inputs_add_job(
    ctx: CallContext, req: service_pb2.CancelInputsAddJobRequest,
) -> service_pb2.SingleInputsAddJobResponse:
    """Cancel a job: its inputs still waiting for a download end failed ("cancelled")."""
    stamp = now()
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        job = _job(db, pk, req.id)
        job.status.CopyFrom(status(_CANCELLED, "Job cancelled"))
        job.modified_at.CopyFrom(timestamp(stamp))
        db.execute("UPDATE inputs_add_jobs SET proto=? WHERE app_pk=? AND id=?",
                   (job.SerializeToString(), pk, job.id))
        rows = db.execute("SELECT id, proto FROM inputs WHERE app_pk=? AND job_id=? AND "
                          "status IN (?, ?)", (pk, job.id, PENDING, IN_PROGRESS)).fetchall()
        cancelled = status(FAILED, "Download failed",
                           f"inputs add job '{job.id}' was cancelled before the download")
        updates = []
        for input_id, proto in rows:
            stored = resources_pb2.Input.FromString(proto)
            stored.status.CopyFrom(cancelled)
            stored.modified_at.CopyFrom(timestamp(stamp))
            updates.append((FAILED, stored.SerializeToString(), pk, input_id))
        db.executemany("UPDATE inputs SET status=?, proto=? WHERE app_pk=? AND id=?", updates)
        job = _with_progress(db, pk, job)
    return service_pb2.SingleInputsAddJobResponse(inputs_add_job=job)


@rpc("GetInputCount")
def get_input_count(
    ctx: CallContext, req: service_pb2.GetInputCountRequest,
) -> service_pb2.SingleInputCountResponse:
    """Counts of the app's inputs by state: processed, to_process, processing, errors."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    counts = dict(db.execute("SELECT status, COUNT(*) FROM inputs WHERE app_pk=? "
                             "GROUP BY status", (pk,)).fetchall())
    return service_pb2.SingleInputCountResponse(counts=resources_pb2.InputCount(
        processed=counts.get(SUCCESS, 0), to_process=counts.get(PENDING, 0),
        processing=counts.get(IN_PROGRESS, 0),
        errors=sum(n for code, n in counts.items()
                   if code not in (SUCCESS, PENDING, IN_PROGRESS))))
